//! The `pgoutput` logical decoding format, protocol version 1 (PostgreSQL's
//! "Logical Replication Message Formats"): one message per row of
//! `pg_logical_slot_get_binary_changes`. Tuple values come as text.

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A transaction starts.
    Begin {
        final_lsn: u64,
        xid: u32,
    },
    /// A transaction ends; `end_lsn` is where the next one starts (the slot's position
    /// once it is read).
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
    },
    /// The columns of a table, sent before its first change in a session.
    Relation(Relation),
    Insert {
        rel: u32,
        new: Tuple,
    },
    /// `old`: the old key (`K`) or whole old row (`O`), when the key changed or the
    /// table's replica identity is full.
    Update {
        rel: u32,
        old: Option<Tuple>,
        new: Tuple,
    },
    /// `old`: the deleted row's key (or whole row, replica identity full).
    Delete {
        rel: u32,
        old: Tuple,
    },
    Truncate {
        rels: Vec<u32>,
    },
    /// Origin, type and logical message records: nothing to apply.
    Other(u8),
}

/// A table as a `Relation` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub namespace: String,
    pub name: String,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    /// Part of the replica identity (the primary key by default).
    pub key: bool,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value the update did not change, so it is not sent.
    Unchanged,
    Text(String),
}

pub type Tuple = Vec<Value>;

/// Decodes one message. The error says what was malformed.
pub fn decode(data: &[u8]) -> Result<Msg, String> {
    let mut r = Reader { data, at: 0 };
    let tag = r.u8()?;
    let msg = match tag {
        b'B' => {
            let final_lsn = r.u64()?;
            let _commit_time = r.u64()?;
            Msg::Begin {
                final_lsn,
                xid: r.u32()?,
            }
        }
        b'C' => {
            let _flags = r.u8()?;
            let commit_lsn = r.u64()?;
            let end_lsn = r.u64()?;
            let _commit_time = r.u64()?;
            Msg::Commit {
                commit_lsn,
                end_lsn,
            }
        }
        b'R' => {
            let id = r.u32()?;
            let namespace = r.string()?;
            let name = r.string()?;
            let _identity = r.u8()?;
            let n = r.u16()?;
            let mut columns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let flags = r.u8()?;
                let name = r.string()?;
                let type_oid = r.u32()?;
                let _typmod = r.u32()?;
                columns.push(Column {
                    name,
                    type_oid,
                    key: flags & 1 == 1,
                });
            }
            Msg::Relation(Relation {
                id,
                namespace,
                name,
                columns,
            })
        }
        b'I' => {
            let rel = r.u32()?;
            r.expect(b'N')?;
            Msg::Insert {
                rel,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let rel = r.u32()?;
            let old = match r.u8()? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    r.expect(b'N')?;
                    Some(old)
                }
                b'N' => None,
                t => return Err(format!("an update has tuple kind `{}`", t as char)),
            };
            Msg::Update {
                rel,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let rel = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => {}
                t => return Err(format!("a delete has tuple kind `{}`", t as char)),
            }
            Msg::Delete {
                rel,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let n = r.u32()?;
            let _options = r.u8()?;
            let rels = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Msg::Truncate { rels }
        }
        b'O' | b'Y' | b'M' => Msg::Other(tag),
        t => return Err(format!("unknown message `{}`", t as char)),
    };
    Ok(msg)
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| format!("the message ends early (at byte {})", self.at))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn expect(&mut self, tag: u8) -> Result<(), String> {
        match self.u8()? {
            t if t == tag => Ok(()),
            t => Err(format!("expected `{}`, found `{}`", tag as char, t as char)),
        }
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, String> {
        let rest = &self.data[self.at..];
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or("a name is not terminated")?;
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Tuple, String> {
        let n = self.u16()?;
        let mut values = Vec::with_capacity(n as usize);
        for _ in 0..n {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    let bytes = self.take(len)?;
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| "a text value is not UTF-8".to_string())?;
                    Value::Text(text.to_string())
                }
                t => return Err(format!("unknown value kind `{}`", t as char)),
            });
        }
        Ok(values)
    }
}

/// An LSN as PostgreSQL writes it (`16/B374D848`).
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Parses an LSN written as PostgreSQL writes it.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some(hi << 32 | lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages captured from PostgreSQL 15 (`pg_logical_slot_peek_binary_changes`,
    /// `encode(data, 'hex')`) for `CREATE TABLE cdc_fixture (id bigint PRIMARY KEY, name
    /// text, price numeric(10,2), at timestamptz)`: an insert, an update setting `name`
    /// to NULL, a delete, a truncate, each its own transaction.
    const CAPTURED: [&str; 14] = [
        "420000000001d9eba80003050ca74eeb09000002d9",
        "52000040037075626c6963006364635f66697874757265006400040169640000000014ffffffff006e616d650000000019ffffffff00707269636500000006a4000a000600617400000004a0ffffffff",
        "49000040034e00047400000001317400000001617400000004312e35307400000016323032342d30352d30312031323a30303a30302b3030",
        "43000000000001d9eba80000000001d9ebd80003050ca74eeb09",
        "420000000001d9ec380003050ca74ef373000002da",
        "55000040034e00047400000001316e7400000004312e35307400000016323032342d30352d30312031323a30303a30302b3030",
        "43000000000001d9ec380000000001d9ec680003050ca74ef373",
        "420000000001d9ecb00003050ca74ef59f000002db",
        "44000040034b00047400000001316e6e6e",
        "43000000000001d9ecb00000000001d9ece00003050ca74ef59f",
        "420000000001d9f8700003050ca74f05be000002dc",
        "52000040037075626c6963006364635f66697874757265006400040169640000000014ffffffff006e616d650000000019ffffffff00707269636500000006a4000a000600617400000004a0ffffffff",
        "54000000010000004003",
        "43000000000001d9f8700000000001d9f9e00003050ca74f05be",
    ];

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn captured_messages_decode_to_the_changes_made() {
        let msgs: Vec<Msg> = CAPTURED
            .iter()
            .map(|h| decode(&bytes(h)).unwrap())
            .collect();
        assert_eq!(
            msgs[0],
            Msg::Begin {
                final_lsn: 0x1d9eba8,
                xid: 729
            }
        );
        let Msg::Relation(rel) = &msgs[1] else {
            panic!("{:?}", msgs[1])
        };
        assert_eq!(
            (rel.namespace.as_str(), rel.name.as_str()),
            ("public", "cdc_fixture")
        );
        let cols: Vec<(&str, u32, bool)> = (rel.columns.iter())
            .map(|c| (c.name.as_str(), c.type_oid, c.key))
            .collect();
        assert_eq!(
            cols,
            [
                ("id", 20, true),
                ("name", 25, false),
                ("price", 1700, false),
                ("at", 1184, false)
            ]
        );
        let row = vec![
            text("1"),
            text("a"),
            text("1.50"),
            text("2024-05-01 12:00:00+00"),
        ];
        assert_eq!(
            msgs[2],
            Msg::Insert {
                rel: rel.id,
                new: row
            }
        );
        assert_eq!(
            msgs[3],
            Msg::Commit {
                commit_lsn: 0x1d9eba8,
                end_lsn: 0x1d9ebd8
            }
        );
        let updated = vec![
            text("1"),
            Value::Null,
            text("1.50"),
            text("2024-05-01 12:00:00+00"),
        ];
        assert_eq!(
            msgs[5],
            Msg::Update {
                rel: rel.id,
                old: None,
                new: updated
            }
        );
        let key = vec![text("1"), Value::Null, Value::Null, Value::Null];
        assert_eq!(
            msgs[8],
            Msg::Delete {
                rel: rel.id,
                old: key
            }
        );
        assert_eq!(msgs[12], Msg::Truncate { rels: vec![rel.id] });
    }

    #[test]
    fn a_cut_or_unknown_message_is_an_error_not_a_panic() {
        let insert = bytes(CAPTURED[2]);
        for cut in 0..insert.len() {
            assert!(decode(&insert[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"Zxx").unwrap_err().contains("unknown message"));
        let mut bad = insert.clone();
        bad[8] = b'x'; // the first value's kind
        assert!(decode(&bad).unwrap_err().contains("value kind"));
    }

    #[test]
    fn lsns_read_and_write_as_postgres_does() {
        assert_eq!(parse_lsn("0/1D9EBD8"), Some(0x1d9ebd8));
        assert_eq!(lsn_text(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn(&lsn_text(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_lsn("1D9EBD8"), None);
    }
}
