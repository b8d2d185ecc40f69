//! BM25 keyword retrieval over a corpus's text, with tantivy, filters applied inside the collection.
//!
//! The index lives in memory and is rebuilt from the table whenever the corpus loads or catches up (see
//! `docs/matrix.md` for why it is not persisted). Each document carries its row number in the corpus as a
//! fast field; the collector asks the caller's predicate about that row before a document may enter the
//! top k, so filtered retrieval returns k hits whenever k matching documents hold a query term.

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::error::{Error, Result};

/// The analyzer's name in the index.
const ANALYZER: &str = "matrix_en";
/// The fast field holding each document's row number.
const ROW: &str = "row";
/// Memory the writer may use while building (tantivy's minimum is 15 MB per thread).
const WRITER_BUDGET: usize = 20_000_000;
/// Most distinct query terms used (a pasted job description is cut here).
const MAX_TERMS: usize = 64;

/// An in-memory BM25 index of one corpus's texts.
pub(crate) struct KeywordIndex {
    // Kept so the searcher's segments stay valid for the index's lifetime.
    _reader: IndexReader,
    searcher: Searcher,
    text: Field,
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for KeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywordIndex")
            .field("docs", &self.searcher.num_docs())
            .finish_non_exhaustive()
    }
}

fn analyzer() -> Result<TextAnalyzer> {
    let stop_words = StopWordFilter::new(Language::English)
        .ok_or_else(|| Error::Keyword("no English stop words".into()))?;
    Ok(TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(Language::English))
        .build())
}

impl KeywordIndex {
    /// Indexes `texts`, the i-th being row i.
    pub(crate) fn build<'a>(texts: impl Iterator<Item = &'a str>) -> Result<KeywordIndex> {
        let mut schema = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs);
        let text = schema.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(indexing),
        );
        let row = schema.add_u64_field(ROW, FAST);
        let index = Index::create_in_ram(schema.build());
        let analyzer = analyzer()?;
        index.tokenizers().register(ANALYZER, analyzer.clone());
        {
            let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, WRITER_BUDGET)?;
            for (i, t) in texts.enumerate() {
                let mut doc = TantivyDocument::default();
                doc.add_text(text, t);
                doc.add_u64(row, i as u64);
                writer.add_document(doc)?;
            }
            writer.commit()?;
            writer.wait_merging_threads()?;
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        Ok(KeywordIndex {
            _reader: reader,
            searcher,
            text,
            analyzer,
        })
    }

    /// The query's distinct terms, as the index analyses text.
    fn terms(&self, query: &str) -> Vec<Term> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(query);
        let mut terms: Vec<Term> = Vec::new();
        while stream.advance() {
            let term = Term::from_field_text(self.text, &stream.token().text);
            if !terms.contains(&term) {
                terms.push(term);
                if terms.len() == MAX_TERMS {
                    break;
                }
            }
        }
        terms
    }

    /// The best `depth` rows for `query` by BM25 among those `allow` accepts, as `(row, score)`.
    pub(crate) fn search<P>(&self, query: &str, depth: usize, allow: P) -> Result<Vec<(u32, f32)>>
    where
        P: Fn(u64) -> bool + Send + Sync + Clone + 'static,
    {
        let terms = self.terms(query);
        if terms.is_empty() || depth == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|t| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>,
                )
            })
            .collect();
        let query = BooleanQuery::new(clauses);
        let collector = FilterCollector::new(
            ROW.to_owned(),
            allow,
            TopDocs::with_limit(depth).order_by_score(),
        );
        let top = self.searcher.search(&query, &collector)?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let segment = self.searcher.segment_reader(address.segment_ord);
            let rows = segment.fast_fields().u64(ROW)?;
            let row = rows
                .first(address.doc_id)
                .ok_or_else(|| Error::Keyword("a document without its row".into()))?;
            let row = u32::try_from(row).map_err(|_| Error::Keyword("row out of range".into()))?;
            out.push((row, score));
        }
        Ok(out)
    }

    /// Documents in the index.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.searcher.num_docs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_with_filters_inside() {
        let texts = [
            "Forklift operator with OSHA 10, warehouse loading docks",
            "Certified welder, MIG and TIG, structural steel",
            "Registered nurse, ICU night shifts",
            "Reach truck and forklift driver, distribution center",
            "Line cook, ServSafe certified",
        ];
        let index = KeywordIndex::build(texts.iter().copied()).expect("build");
        assert_eq!(index.len(), 5);
        let hits = index
            .search("forklift operators", 10, |_| true)
            .expect("search");
        let rows: Vec<u32> = hits.iter().map(|h| h.0).collect();
        assert_eq!(
            rows[0], 0,
            "both terms (stemmed) match row 0 best: {hits:?}"
        );
        assert!(rows.contains(&3));
        assert_eq!(rows.len(), 2);
        // The filter applies while collecting: row 0 is not allowed, row 3 still comes back.
        let hits = index.search("forklift", 1, |row| row != 0).expect("search");
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3]);
        assert!(
            index
                .search("the and of", 10, |_| true)
                .expect("stop words")
                .is_empty()
        );
        assert!(index.search("", 10, |_| true).expect("empty").is_empty());
    }
}
