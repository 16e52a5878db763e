//! Rows the source deleted by key (change data capture): the keys are staged in the
//! writer's keys table (see [`super::missing`]), then the destination's rows with a staged
//! key are deleted (hard) or marked in `_ferry_deleted_at` (soft).

use ferry_core::Deletes;

/// The statements that delete or mark the rows of table `t` (quoted) for which `staged`
/// holds (their key is in the keys table); the last one's row count is the result. Soft
/// deletes set column `mark` to `stamp` and leave rows marked before as they were.
pub fn listed(t: &str, staged: &str, mark: &str, stamp: &str, deletes: Deletes) -> Vec<String> {
    match deletes {
        Deletes::Hard => vec![format!("DELETE FROM {t} WHERE {staged}")],
        Deletes::Soft => vec![format!(
            "UPDATE {t} SET {mark} = {stamp} WHERE {mark} IS NULL AND {staged}"
        )],
    }
}

#[cfg(test)]
mod tests {
    use crate::write::missing::missing;
    use crate::write::test_dialect::Plain;
    use ferry_core::Deletes;

    #[test]
    fn staged_keys_are_deleted_or_marked_by_every_key_column() {
        let key = ["a".to_string(), "b".to_string()];
        let at = "2024-05-01 12:00:00";
        assert_eq!(
            missing(&Plain, "t", "k", &key, Deletes::Hard, at).listed,
            [
                r#"DELETE FROM "t" WHERE EXISTS (SELECT 1 FROM "k" WHERE "k"."a" = "t"."a" AND "k"."b" = "t"."b")"#
            ]
        );
        assert_eq!(
            missing(&Plain, "t", "k", &key[..1], Deletes::Soft, at).listed,
            [
                r#"UPDATE "t" SET "_ferry_deleted_at" = '2024-05-01T12:00:00.000000Z' WHERE "_ferry_deleted_at" IS NULL AND EXISTS (SELECT 1 FROM "k" WHERE "k"."a" = "t"."a")"#
            ]
        );
    }
}
