//! Search as you type ([`crate::Engine::search`]).
//!
//! Every word of the query is a prefix (`hel` finds "hello"); a message must hold all of them.
//! Conversation titles are searched too. Where the words were found is given as byte ranges
//! (`highlights`), never as markers in the text, which could not be told from a bracket the
//! message itself holds.
//!
//! Fast on a long history: ranking every match before keeping the first 20 is what makes a
//! common word slow (on 100,000 messages ~120 ms, most of it bm25 over tens of thousands of
//! rows). Instead the newest `WINDOW` matches come straight off the index (FTS5 walks its
//! doclists in descending rowid order and stops there), and only those are ranked. With the
//! prefix indexes of migration 0014, a one-letter prefix is as quick. Figures and the command
//! that measures them: `docs/performance.md`, "Search".

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::Store;

/// Newest matches ranked per search. Enough that the best of them are the ones a person
/// means (recent conversations), small enough that ranking them costs nothing.
const WINDOW: i64 = 200;

/// Characters of context shown around the first match.
const BEFORE: usize = 40;
const AFTER: usize = 120;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// One search result: a conversation whose title matched, or a message in one.
pub struct SearchHit {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    /// The conversation to open.
    pub conversation_id: i64,
    /// The message that matched; `None` when the conversation's title did.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub message_id: Option<i64>,
    /// The conversation's title.
    pub title: String,
    /// The message's role (`user`, `assistant`); `None` for a title.
    pub role: Option<String>,
    /// The matching passage (or the title), as plain text.
    pub snippet: String,
    /// Where the words are in `snippet`: byte ranges `[start, end)`.
    pub highlights: Vec<[usize; 2]>,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    /// When the message was said (or the conversation started).
    pub created_at: crate::clock::Millis,
}

/// The words of a query, lowercased.
fn terms(query: &str) -> Vec<String> {
    query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Byte ranges of the words in `text` that start with one of `terms`.
pub fn highlights(text: &str, terms: &[String]) -> Vec<[usize; 2]> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let word = text[s..i].to_lowercase();
                if let Some(t) = terms.iter().filter(|t| word.starts_with(t.as_str())).max_by_key(|t| t.len()) {
                    // The matched prefix, mapped back to the original text's bytes.
                    let chars = t.chars().count();
                    let end = text[s..i].char_indices().nth(chars).map_or(i, |(o, _)| s + o);
                    out.push([s, end]);
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// A passage of `text` around its first highlight, with the highlights inside it.
fn passage(text: &str, marks: &[[usize; 2]]) -> (String, Vec<[usize; 2]>) {
    let flat = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let Some(first) = marks.first() else { return (flat(&text.chars().take(BEFORE + AFTER).collect::<String>()), vec![]) };
    let from = text[..first[0]].char_indices().rev().nth(BEFORE - 1).map_or(0, |(i, _)| i);
    let to = text[first[0]..].char_indices().nth(AFTER).map_or(text.len(), |(i, _)| first[0] + i);
    let (lead, tail) = (if from > 0 { "…" } else { "" }, if to < text.len() { "…" } else { "" });
    let snippet = format!("{lead}{}{tail}", flat(&text[from..to]));
    let shift = lead.len();
    let inside = marks.iter().filter(|m| m[1] <= to).map(|m| [m[0] - from + shift, m[1] - from + shift]).collect();
    (snippet, inside)
}

pub(crate) async fn search(store: &Store, query: &str, limit: i64) -> Result<Vec<SearchHit>> {
    let terms = terms(query);
    if terms.is_empty() {
        return Err(Error::SearchEmpty);
    }
    // FTS5 syntax is not exposed: each word is quoted, so a stray quote or dash is just text.
    let expr = terms.iter().map(|t| format!("\"{t}\"*")).collect::<Vec<_>>().join(" ");
    store
        .read(move |c| {
            // The newest matches, each with its rank; the best `limit` of them.
            let mut window: Vec<(i64, f64)> = c
                .prepare_cached(
                    "SELECT rowid, bm25(messages_fts) FROM messages_fts WHERE messages_fts MATCH ?1
                     ORDER BY rowid DESC LIMIT ?2",
                )?
                .query_map(params![expr, WINDOW], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            window.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
            window.truncate(limit.max(0) as usize);
            let mut hits = Vec::new();
            // Titles first: a conversation named for what is sought is the likeliest answer.
            let like: Vec<String> = terms.iter().map(|t| format!("%{}%", t.replace(['%', '_', '\\'], ""))).collect();
            let filter = (1..=like.len()).map(|i| format!("lower(title) LIKE ?{i}")).collect::<Vec<_>>().join(" AND ");
            let mut titles = c.prepare(&format!(
                "SELECT id, title, created_at FROM conversations WHERE {filter} ORDER BY updated_at DESC LIMIT {}",
                limit.max(0)
            ))?;
            let rows = titles.query_map(rusqlite::params_from_iter(like.iter()), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?;
            for row in rows {
                let (id, title, created_at) = row?;
                let marks = highlights(&title, &terms);
                // Every word must start a word of the title (LIKE found it anywhere).
                let lower: Vec<String> = marks.iter().map(|m| title[m[0]..m[1]].to_lowercase()).collect();
                if terms.iter().all(|t| lower.iter().any(|w| w == t)) {
                    hits.push(SearchHit {
                        conversation_id: id,
                        message_id: None,
                        snippet: title.clone(),
                        title,
                        role: None,
                        highlights: marks,
                        created_at,
                    });
                }
            }
            let mut read = c.prepare_cached(
                "SELECT m.conversation_id, m.role, m.text, m.created_at, c.title
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1 AND m.active = 1",
            )?;
            for (id, _) in window {
                // Versions not shown are not offered: opening one would find a different branch.
                let Some((conversation_id, role, text, created_at, title)): Option<(i64, String, String, i64, String)> =
                    read.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional()?
                else {
                    continue;
                };
                let (snippet, highlights) = passage(&text, &highlights(&text, &terms));
                hits.push(SearchHit {
                    conversation_id,
                    message_id: Some(id),
                    title,
                    role: Some(role),
                    snippet,
                    highlights,
                    created_at,
                });
            }
            Ok(hits)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_are_the_matched_prefixes_as_byte_ranges() {
        let terms = terms("HEL wor");
        let text = "[Hello], wörld of words — hel!";
        let marks = highlights(text, &terms);
        let shown: Vec<&str> = marks.iter().map(|m| &text[m[0]..m[1]]).collect();
        assert_eq!(shown, ["Hel", "wor", "hel"]);
        let (snippet, inside) = passage(text, &marks);
        assert_eq!(snippet, text);
        assert_eq!(inside, marks);
    }

    #[test]
    fn a_passage_is_cut_around_the_first_match_and_its_ranges_follow() {
        let text = format!("{}needle{}", "é ".repeat(100), " x".repeat(200));
        let terms = terms("needle");
        let (snippet, marks) = passage(&text, &highlights(&text, &terms));
        assert!(snippet.starts_with('…') && snippet.ends_with('…'), "{snippet}");
        assert_eq!(&snippet[marks[0][0]..marks[0][1]], "needle");
    }
}
