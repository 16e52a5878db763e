//! A writer that blocks, kept between the async calls of a `StreamWriter`: each call
//! takes it to a blocking thread and puts it back.

use ferry_core::{Error, Result};

use crate::blocking;

/// The writer kept in `slot`, taken for good; `noun` (`SFTP`) names it in the error of a
/// slot left empty by an earlier call that failed.
pub fn take_parked<T>(slot: &mut Option<T>, noun: &str) -> Result<T> {
    slot.take()
        .ok_or_else(|| Error::internal(format!("the {noun} writer was used after it failed")))
}

/// Runs `f` off the async threads on the writer kept in `slot`, then puts the writer back
/// whatever `f` returned.
pub async fn with_parked<T, R>(
    slot: &mut Option<T>,
    noun: &str,
    f: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Result<R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let mut writer = take_parked(slot, noun)?;
    let (writer, r) = blocking(noun, move || {
        let r = f(&mut writer);
        Ok((writer, r))
    })
    .await?;
    *slot = Some(writer);
    Ok(r)
}
