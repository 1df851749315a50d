//! Multi-row `INSERT … VALUES (…), (…)` statements with numbered placeholders that both backends
//! accept. sqlx's `QueryBuilder` writes `?` for `Any`, which PostgreSQL refuses, so the statement
//! text is built here from the caller's constant table and column names and placeholder numbers
//! only (never from data), and cached per row count so each connection prepares it once.

use std::sync::{Arc, Mutex};

use sqlx::AssertSqlSafe;

/// A cache of `INSERT` statements for one table and column list, keyed by row count.
pub struct MultiRowInsert {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    cache: Mutex<Vec<Option<Arc<str>>>>,
}

impl MultiRowInsert {
    /// `head` is `INSERT INTO t (a, b, c) VALUES`; `tail` follows the values (`ON CONFLICT …`).
    pub const fn new(head: &'static str, columns: usize, tail: &'static str) -> MultiRowInsert {
        MultiRowInsert { head, columns, tail, cache: Mutex::new(Vec::new()) }
    }

    /// The statement for `rows` rows.
    pub fn sql(&self, rows: usize) -> AssertSqlSafe<Arc<str>> {
        let mut cache = self.cache.lock().expect("statement cache poisoned");
        if cache.len() <= rows {
            cache.resize(rows + 1, None);
        }
        let sql = cache[rows]
            .get_or_insert_with(|| {
                let mut s = String::with_capacity(self.head.len() + rows * self.columns * 5 + self.tail.len());
                s.push_str(self.head);
                let mut n = 0;
                for r in 0..rows {
                    s.push_str(if r == 0 { " (" } else { ", (" });
                    for c in 0..self.columns {
                        n += 1;
                        if c > 0 {
                            s.push_str(", ");
                        }
                        s.push('$');
                        s.push_str(&n.to_string());
                    }
                    s.push(')');
                }
                if !self.tail.is_empty() {
                    s.push(' ');
                    s.push_str(self.tail);
                }
                Arc::from(s)
            })
            .clone();
        AssertSqlSafe(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_across_rows() {
        let ins = MultiRowInsert::new("INSERT INTO t (a, b) VALUES", 2, "ON CONFLICT DO NOTHING");
        assert_eq!(&*ins.sql(2).0, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING");
        assert_eq!(&*ins.sql(1).0, "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING");
    }
}
