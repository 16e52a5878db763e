#![no_main]

libfuzzer_sys::fuzz_target!(init: {
    // Ferry's Parquet reader turns a panic inside the `parquet` crate into an error
    // (`codec::parquet::guarded`); libfuzzer-sys's hook would abort on it first. A panic
    // that escapes Ferry still aborts: libfuzzer-sys catches it and calls abort.
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let _ = ferry_fuzz::entries::parquet_read(data);
});
