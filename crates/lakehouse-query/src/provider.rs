//! Every dataset as a table: `workers` is the current version, `"workers@v3"` version 3.
//!
//! One provider per query: the names are listed when the query starts, tables are opened when the planner
//! asks for them (so a new version is visible to the next query), and each name is opened once per query (a
//! self-join sees one version).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlanBuilder;
use lakehouse_catalog::tables::DATASETS_PREFIX;
use lakehouse_catalog::{Error as CatalogError, Tables};
use object_store::path::Path;

use crate::files::FileTable;

/// The dataset holding every caller's searches, readable only by roles given it.
pub const RECORDINGS: &str = "matrix_recordings";

/// What the caller's role lets it see of the tables.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    /// The role's name, for messages.
    pub role: String,
    /// Columns left out of every table.
    pub hidden: Vec<String>,
    /// Whether `matrix_recordings` is readable.
    pub recordings: bool,
}

impl Visibility {
    /// Everything visible (the services themselves, admin).
    pub fn all() -> Self {
        Visibility {
            role: "admin".to_owned(),
            hidden: Vec::new(),
            recordings: true,
        }
    }
}

/// A table the caller's role may not read: answered 403 (see `datafusion_error`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

/// The schema provider of one query.
#[derive(Debug)]
pub struct DatasetSchema {
    tables: Tables,
    names: Vec<String>,
    scan: Arc<SessionState>,
    runtime: Arc<RuntimeEnv>,
    visibility: Visibility,
    opened: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

impl DatasetSchema {
    /// A provider over `tables`, listing `names`; scans follow `scan`'s Parquet settings and read footers
    /// through `runtime`'s cache.
    pub fn new(
        tables: Tables,
        names: Vec<String>,
        scan: Arc<SessionState>,
        runtime: Arc<RuntimeEnv>,
        visibility: Visibility,
    ) -> Self {
        let names = names
            .into_iter()
            .filter(|n| visibility.recordings || n != RECORDINGS)
            .collect();
        DatasetSchema {
            tables,
            names,
            scan,
            runtime,
            visibility,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// `provider` with the role's hidden columns left out: a view projecting the others, so `SELECT *`
    /// omits them and naming one is an unknown column, whatever the query does around it (joins,
    /// subqueries, functions, `DESCRIBE`, time travel all go through this table).
    fn masked(
        &self,
        name: &str,
        provider: Arc<dyn TableProvider>,
    ) -> Result<Arc<dyn TableProvider>> {
        let schema = provider.schema();
        let visible: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                !self
                    .visibility
                    .hidden
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(f.name()))
            })
            .map(|(i, _)| i)
            .collect();
        if visible.len() == schema.fields().len() {
            return Ok(provider);
        }
        let plan =
            LogicalPlanBuilder::scan(name, provider_as_source(provider), Some(visible))?.build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// Splits `name@v3` into the dataset and the version.
pub fn parse_table_name(name: &str) -> Result<(&str, Option<u64>)> {
    match name.split_once('@') {
        None => Ok((name, None)),
        Some((dataset, version)) => {
            let digits = version.strip_prefix(['v', 'V']).unwrap_or(version);
            let version = digits.parse::<u64>().map_err(|_| {
                DataFusionError::Plan(format!(
                    "{name:?}: a version is written name@v<number>, e.g. \"{dataset}@v3\""
                ))
            })?;
            Ok((dataset, Some(version)))
        }
    }
}

#[async_trait]
impl SchemaProvider for DatasetSchema {
    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(found) = self.opened.lock().ok().and_then(|o| o.get(name).cloned()) {
            return Ok(Some(found));
        }
        let (dataset, version) = parse_table_name(name)?;
        if dataset == RECORDINGS && !self.visibility.recordings {
            return Err(DataFusionError::External(Box::new(Forbidden(format!(
                "role {} may not read {RECORDINGS} (it holds every caller's searches): \
                 it lacks the action `recordings.read`",
                self.visibility.role
            )))));
        }
        let opened = match version {
            None => self.tables.open_current(dataset).await,
            Some(_) => self.tables.open(dataset, version).await,
        };
        let table = match opened {
            Ok(t) => t,
            Err(CatalogError::NotFound(_) | CatalogError::InvalidName { .. }) => return Ok(None),
            Err(
                e @ (CatalogError::VersionNotFound { .. } | CatalogError::VersionExpired { .. }),
            ) => {
                return Err(DataFusionError::Plan(e.to_string()));
            }
            Err(e) => return Err(DataFusionError::External(Box::new(e))),
        };
        let prefix = Path::from_iter([DATASETS_PREFIX, dataset]);
        let view_types = self
            .scan
            .config_options()
            .execution
            .parquet
            .schema_force_view_types;
        let plain = FileTable::plain(&table, &prefix, view_types, &self.runtime).await?;
        let provider: Arc<dyn TableProvider> = match plain {
            Some(files) => Arc::new(files),
            None => table
                .table_provider()
                .with_session(Arc::clone(&self.scan))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
        };
        let provider = self.masked(dataset, provider)?;
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(name.to_owned(), provider.clone());
        }
        Ok(Some(provider))
    }

    fn table_exist(&self, name: &str) -> bool {
        parse_table_name(name).is_ok_and(|(dataset, _)| self.names.iter().any(|n| n == dataset))
    }
}
