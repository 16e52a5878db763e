#![no_main]

libfuzzer_sys::fuzz_target!(init: {
    // Ferry's Excel reader turns a panic inside `calamine` into an error
    // (`codec::excel::guard`); libfuzzer-sys's hook would abort on it first. A panic
    // that escapes Ferry still aborts: libfuzzer-sys catches it and calls abort.
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let _ = ferry_fuzz::entries::excel_read(data);
});
