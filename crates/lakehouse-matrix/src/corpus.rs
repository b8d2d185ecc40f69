//! One corpus at run time: its definition, the state searches read (an immutable [`Snapshot`] swapped whole
//! when a build or catch-up ends), its job orders, and its progress.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use lakehouse_types::filter::Filter;
use lakehouse_types::matrix::{CorpusDefinition, CorpusInfo, CorpusStatus, Fields, SyncStats};

use crate::definition::Plan;
use crate::keyword::KeywordIndex;
use crate::rows::Row;
use crate::store::{Prints, StoredState};

/// What searches of one corpus read: one dataset version's rows, their keyword index, and the plan they
/// were built with. Never changed once built.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) version: u64,
    pub(crate) plan: Arc<Plan>,
    /// The embedding model of the corpus's vectors.
    pub(crate) model: Option<String>,
    pub(crate) rows: Vec<Row>,
    pub(crate) by_id: HashMap<String, u32>,
    pub(crate) keyword: KeywordIndex,
    /// The rows each recent filter admits (searches repeat their filters).
    pub(crate) admitted: Mutex<HashMap<String, Arc<Vec<bool>>>>,
}

/// Filters whose admitted rows a snapshot keeps.
const ADMITTED_FILTERS: usize = 64;

impl Snapshot {
    /// Which rows `filter` admits, by row number: kept, since the rows never change.
    pub(crate) fn admitted(&self, filter: &Filter) -> Arc<Vec<bool>> {
        if let Some(found) = self
            .admitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(filter.key())
        {
            return Arc::clone(found);
        }
        let rows: Arc<Vec<bool>> = Arc::new(
            self.rows
                .iter()
                .map(|row| filter.matches_by(|f| row.values.get(f)))
                .collect(),
        );
        let mut kept = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= ADMITTED_FILTERS {
            kept.clear();
        }
        kept.insert(filter.key().to_owned(), Arc::clone(&rows));
        rows
    }
}

/// One job order: the text it adds to a query and the fields rules read.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) text: String,
    pub(crate) fields: Fields,
}

/// A corpus's job orders, as of one version of their dataset.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    pub(crate) version: u64,
    pub(crate) by_id: HashMap<String, Order>,
}

/// Status and progress, as `GET /v1/matrix/corpora/{name}` shows them.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub(crate) status: CorpusStatus,
    pub(crate) version: Option<u64>,
    pub(crate) rows_total: u64,
    pub(crate) rows_indexed: u64,
    pub(crate) error: Option<String>,
    pub(crate) catching_up_to: Option<u64>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) last_sync: Option<SyncStats>,
}

/// What only the build worker touches: the stored state and the fingerprints by id.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub(crate) stored: StoredState,
    pub(crate) prints: HashMap<String, Prints>,
    /// The dataset version a failure happened at, so it is not retried until the dataset moves or a
    /// rebuild is asked for.
    pub(crate) failed_version: Option<u64>,
}

/// One corpus.
#[derive(Debug)]
pub(crate) struct Corpus {
    pub(crate) definition: CorpusDefinition,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    orders: RwLock<Option<Arc<Orders>>>,
    progress: Mutex<Progress>,
    deleted: AtomicBool,
    rebuild: AtomicBool,
    pub(crate) work: tokio::sync::Mutex<Work>,
}

impl Corpus {
    /// A corpus as stored (or just created, with an empty state).
    pub(crate) fn new(definition: CorpusDefinition, stored: StoredState) -> Self {
        // Nothing is searchable until the worker has loaded (or built) a snapshot: a corpus read back at
        // start is building until then, even one that was ready before.
        let status = match &stored.error {
            Some(_) => CorpusStatus::Failed,
            None => CorpusStatus::Building,
        };
        let prints = stored.prints();
        let progress = Progress {
            status,
            version: stored.version,
            rows_total: prints.len() as u64,
            rows_indexed: prints.len() as u64,
            error: stored.error.clone(),
            catching_up_to: None,
            updated_at: stored.updated_at.unwrap_or_else(Utc::now),
            last_sync: None,
        };
        Corpus {
            definition,
            snapshot: RwLock::new(None),
            orders: RwLock::new(None),
            progress: Mutex::new(progress),
            deleted: AtomicBool::new(false),
            rebuild: AtomicBool::new(false),
            work: tokio::sync::Mutex::new(Work {
                failed_version: stored.failed_version,
                stored,
                prints,
            }),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.definition.name
    }

    pub(crate) fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_snapshot(&self, snapshot: Arc<Snapshot>) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(snapshot);
    }

    pub(crate) fn orders(&self) -> Option<Arc<Orders>> {
        self.orders
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_orders(&self, orders: Arc<Orders>) {
        *self.orders.write().unwrap_or_else(PoisonError::into_inner) = Some(orders);
    }

    /// Changes the progress under its lock.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut progress);
        progress.updated_at = Utc::now();
    }

    pub(crate) fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// Asks the worker to build again even though the dataset has not moved.
    pub(crate) fn request_rebuild(&self) {
        self.rebuild.store(true, Ordering::SeqCst);
    }

    pub(crate) fn take_rebuild(&self) -> bool {
        self.rebuild.swap(false, Ordering::SeqCst)
    }

    /// The public view.
    pub(crate) fn info(&self) -> CorpusInfo {
        let p = self.progress();
        CorpusInfo {
            name: self.definition.name.clone(),
            dataset: self.definition.dataset.clone(),
            dataset_version: p.version,
            status: p.status,
            rows_total: p.rows_total,
            rows_indexed: p.rows_indexed,
            error: p.error,
            catching_up_to: p.catching_up_to,
            updated_at: p.updated_at,
            last_sync: p.last_sync,
            definition: self.definition.clone(),
        }
    }
}

/// The corpora this process knows, by name.
#[derive(Debug, Default)]
pub(crate) struct Corpora(RwLock<BTreeMap<String, Arc<Corpus>>>);

impl Corpora {
    /// Every corpus, in name order.
    pub(crate) fn all(&self) -> Vec<Arc<Corpus>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The corpus named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Corpus>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Adds `corpus` unless one of its name is known; says whether it was added.
    pub(crate) fn add(&self, corpus: Arc<Corpus>) -> bool {
        let mut corpora = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if corpora.contains_key(corpus.name()) {
            return false;
        }
        corpora.insert(corpus.name().to_owned(), corpus);
        true
    }

    /// Removes and returns the corpus named `name`.
    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Corpus>> {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }
}
