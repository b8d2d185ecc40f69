//! Realistic synthetic staffing data: workers, clients, job orders, placements and timesheets as CSV.
//!
//! The data is what matrix search is for: workers with real-looking names, a primary role with its own
//! skills and certifications, a city with coordinates, a status (some do-not-rehire), an availability date,
//! a minimum pay rate and a free-text profile; job orders from clients that ask for a role in a city with a
//! radius, required certifications, a start date and a pay rate. Every file is deterministic for a seed
//! (ChaCha8, whose output is fixed by its specification). Dates count from a fixed reference day, not from
//! today, so the same seed gives the same files on any day.
//!
//! With `messy`, the files carry the faults of real exports: a UTF-8 byte-order mark, CRLF line ends,
//! quoted line breaks inside profiles and descriptions, padded text values, phone numbers in mixed
//! formats, and empty values written both as nothing and as `""`.
#![deny(missing_docs)]

mod data;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{Duration, NaiveDate};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use data::{
    CITIES, CLOSERS, COMMON_CERTS, COMPANY_FIRST, COMPANY_LAST, FIRST_NAMES, LAST_NAMES, OPENERS,
    ROLES, Role, SHIFTS,
};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Workers (the other tables are sized from it).
    pub workers: usize,
    /// The random seed.
    pub seed: u64,
    /// Write the faults of real exports.
    pub messy: bool,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The table (and file stem): `workers`, `clients`, `job_orders`, `placements`, `timesheets`.
    pub table: &'static str,
    /// Data rows (not counting the header).
    pub rows: usize,
    /// File size in bytes.
    pub bytes: u64,
}

/// The day dates count from (a Monday).
pub fn reference_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 6).unwrap_or_default()
}

/// The tables in the order they are written (and should be ingested).
pub const TABLES: &[&str] = &[
    "workers",
    "clients",
    "job_orders",
    "placements",
    "timesheets",
];

/// Writes `<table>.csv` for every table into `out` (created when missing).
pub fn generate(out: &Path, options: &Options) -> std::io::Result<Vec<Written>> {
    std::fs::create_dir_all(out)?;
    let mut g = Generator {
        rng: ChaCha8Rng::seed_from_u64(options.seed),
        messy: options.messy,
    };
    let workers = g.workers(options.workers);
    let clients = g.clients((options.workers / 25).max(5));
    let orders = g.orders((options.workers / 5).max(10), &clients);
    let placements = g.placements(options.workers / 2, &workers, &orders);
    let timesheets = g.timesheets(&placements);
    let tables = [
        ("workers", workers.table),
        ("clients", clients.table),
        ("job_orders", orders.table),
        ("placements", placements.table),
        ("timesheets", timesheets),
    ];
    let mut written = Vec::new();
    for (name, table) in tables {
        let path = out.join(format!("{name}.csv"));
        let bytes = table.write(&path, options.messy)?;
        written.push(Written {
            table: name,
            rows: table.rows.len(),
            bytes,
        });
    }
    Ok(written)
}

/// A CSV table: header and rows of optional cells (`None` is a missing value).
#[derive(Debug, Default)]
struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Option<String>>>,
}

impl Table {
    fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    fn write(&self, path: &Path, messy: bool) -> std::io::Result<u64> {
        let newline = if messy { "\r\n" } else { "\n" };
        let mut text = String::new();
        if messy {
            text.push('\u{feff}');
        }
        text.push_str(&self.header.join(","));
        text.push_str(newline);
        for (r, row) in self.rows.iter().enumerate() {
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                match cell {
                    // Empty values come both ways in real exports: nothing, or a quoted empty string.
                    None if messy && (r + i) % 3 == 0 => text.push_str("\"\""),
                    None => {}
                    Some(value) => push_field(&mut text, value),
                }
            }
            text.push_str(newline);
        }
        let mut file = std::fs::File::create(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(text.len() as u64)
    }
}

/// A CSV field, quoted when it holds a comma, a quote, a line break or edge spaces.
fn push_field(out: &mut String, value: &str) {
    let quote =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if quote {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

struct Generator {
    rng: ChaCha8Rng,
    messy: bool,
}

/// A generated worker, as later tables need it.
struct Worker {
    id: String,
    role: usize,
    pay_min: f64,
}

struct Workers {
    table: Table,
    list: Vec<Worker>,
}

struct Client {
    id: String,
    name: String,
    city: usize,
}

struct Clients {
    table: Table,
    list: Vec<Client>,
}

struct OrderRow {
    id: String,
    client: String,
    role: usize,
    start: NaiveDate,
    pay: f64,
}

struct Orders {
    table: Table,
    list: Vec<OrderRow>,
}

struct Placement {
    id: String,
    worker: String,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

struct Placements {
    table: Table,
    list: Vec<Placement>,
}

fn money(v: f64) -> String {
    format!("{v:.2}")
}

impl Generator {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // The lists are constants and never empty.
        items.choose(&mut self.rng).unwrap_or(&items[0])
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Some of a list, in its order.
    fn some_of(&mut self, items: &[&'static str], min: usize, max: usize) -> Vec<&'static str> {
        let want = self.rng.random_range(min..=max.max(min)).min(items.len());
        let mut picked: Vec<usize> = (0..items.len()).collect();
        for i in 0..picked.len() {
            let j = self.rng.random_range(i..picked.len());
            picked.swap(i, j);
        }
        let mut chosen: Vec<usize> = picked.into_iter().take(want).collect();
        chosen.sort_unstable();
        chosen.into_iter().map(|i| items[i]).collect()
    }

    /// Text padded with spaces now and then, in messy mode.
    fn pad(&mut self, value: &str) -> String {
        if self.messy && self.chance(0.08) {
            format!(" {value}  ")
        } else {
            value.to_owned()
        }
    }

    fn phone(&mut self, area: u32) -> String {
        let line = self.rng.random_range(100..10_000);
        if !self.messy {
            return format!("({area}) 555-{line:04}");
        }
        match self.rng.random_range(0..4) {
            0 => format!("({area}) 555-{line:04}"),
            1 => format!("{area}-555-{line:04}"),
            2 => format!("+1 {area} 555 {line:04}"),
            _ => format!("{area}555{line:04}"),
        }
    }

    /// A line break inside a text, now and then, in messy mode.
    fn wrap(&mut self, first: String, second: &str) -> String {
        if self.messy && self.chance(0.1) {
            format!("{first}\n{second}")
        } else {
            format!("{first} {second}")
        }
    }

    fn workers(&mut self, n: usize) -> Workers {
        let mut table = Table::new(&[
            "worker_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "city",
            "state",
            "lat",
            "lon",
            "primary_role",
            "skills",
            "certifications",
            "years_experience",
            "rating",
            "pay_rate_min",
            "status",
            "available_from",
            "profile_text",
            "updated_at",
        ]);
        let mut list = Vec::with_capacity(n);
        let day0 = reference_day();
        for i in 0..n {
            let id = format!("W-{:06}", i + 1);
            let first = *self.pick(FIRST_NAMES);
            let last = *self.pick(LAST_NAMES);
            let role_at = self.rng.random_range(0..ROLES.len());
            let role: &Role = &ROLES[role_at];
            let city_at = self.rng.random_range(0..CITIES.len());
            let (city, state, lat, lon) = CITIES[city_at];
            let lat = lat + self.rng.random_range(-0.25..0.25);
            let lon = lon + self.rng.random_range(-0.25..0.25);
            let years: u32 = self.rng.random_range(0..=25);
            let rating = f64::from(self.rng.random_range(25..=50u32)) / 10.0;
            let (low, high) = role.pay;
            let pay_min =
                (low + (high - low) * f64::from(years) / 30.0 + self.rng.random_range(-1.5..2.5))
                    .max(12.0);
            let skills = self.some_of(role.skills, 3, 5);
            let mut certs: Vec<&str> = role
                .certs
                .iter()
                .copied()
                .filter(|_| self.rng.random_bool(0.7))
                .collect();
            for extra in COMMON_CERTS {
                if !certs.contains(extra) && self.chance(0.12) {
                    certs.push(extra);
                }
            }
            let status = match self.rng.random_range(0..100) {
                0..72 => "active",
                72..82 => "inactive",
                82..94 => "placed",
                _ => "do_not_rehire",
            };
            let available = day0 + Duration::days(self.rng.random_range(-30..60));
            let opener = *self.pick(OPENERS);
            let closer = *self.pick(CLOSERS);
            let mut profile = format!(
                "{opener} {} with {years} years of experience in {}.",
                role.title.to_lowercase(),
                skills.join(", ")
            );
            if !certs.is_empty() {
                let _ = write!(profile, " Holds {}.", certs.join(", "));
            }
            let profile = self.wrap(profile, &format!("Based in {city}, {state}. {closer}"));
            let email_domain = self.pick(&["example.com", "example.org", "mail.example.net"]);
            let email = format!(
                "{}.{}{}@{email_domain}",
                first.to_lowercase(),
                last.to_lowercase().replace('\'', ""),
                i % 100
            );
            let area = 200 + (city_at as u32 * 17) % 700;
            let updated = day0 - Duration::days(self.rng.random_range(0..365));
            let row = vec![
                Some(id.clone()),
                Some(self.pad(first)),
                Some(self.pad(last)),
                Some(email),
                Some(self.phone(area)),
                Some(self.pad(city)),
                Some(state.to_owned()),
                Some(format!("{lat:.5}")),
                Some(format!("{lon:.5}")),
                Some(self.pad(role.title)),
                Some(skills.join(";")),
                (!certs.is_empty()).then(|| certs.join(";")),
                Some(years.to_string()),
                Some(format!("{rating:.1}")),
                Some(money(pay_min)),
                Some(status.to_owned()),
                Some(available.to_string()),
                Some(profile),
                Some(format!("{updated}T{:02}:{:02}:00Z", i % 24, (i * 7) % 60)),
            ];
            table.rows.push(row);
            list.push(Worker {
                id,
                role: role_at,
                pay_min,
            });
        }
        Workers { table, list }
    }

    fn clients(&mut self, n: usize) -> Clients {
        let mut table = Table::new(&[
            "client_id",
            "name",
            "industry",
            "city",
            "state",
            "contact_name",
            "contact_email",
            "contact_phone",
        ]);
        let mut list = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("C-{:04}", i + 1);
            let name = format!("{} {}", self.pick(COMPANY_FIRST), self.pick(COMPANY_LAST));
            let city_at = self.rng.random_range(0..CITIES.len());
            let (city, state, _, _) = CITIES[city_at];
            let industry = ROLES[self.rng.random_range(0..ROLES.len())].industry;
            let contact = format!("{} {}", self.pick(FIRST_NAMES), self.pick(LAST_NAMES));
            let email = format!(
                "{}@{}.example.com",
                contact.to_lowercase().replace([' ', '\''], "."),
                name.to_lowercase().replace(' ', "")
            );
            let area = 200 + (city_at as u32 * 17) % 700;
            table.rows.push(vec![
                Some(id.clone()),
                Some(self.pad(&name)),
                Some(industry.to_owned()),
                Some(self.pad(city)),
                Some(state.to_owned()),
                Some(contact),
                Some(email),
                Some(self.phone(area)),
            ]);
            list.push(Client {
                id,
                name,
                city: city_at,
            });
        }
        Clients { table, list }
    }

    fn orders(&mut self, n: usize, clients: &Clients) -> Orders {
        let mut table = Table::new(&[
            "order_id",
            "client_id",
            "title",
            "description",
            "city",
            "state",
            "site_lat",
            "site_lon",
            "radius_miles",
            "required_certs",
            "start_date",
            "pay_rate",
            "openings",
            "shift",
            "status",
            "created_at",
        ]);
        let mut list = Vec::with_capacity(n);
        let day0 = reference_day();
        for i in 0..n {
            let id = format!("JO-{:05}", i + 1);
            let client = &clients.list[self.rng.random_range(0..clients.list.len())];
            let role_at = self.rng.random_range(0..ROLES.len());
            let role = &ROLES[role_at];
            // Most orders are near the client's own city; some at another site.
            let city_at = if self.chance(0.8) {
                client.city
            } else {
                self.rng.random_range(0..CITIES.len())
            };
            let (city, state, lat, lon) = CITIES[city_at];
            let radius = *self.pick(&[25u32, 25, 50, 50, 75, 100]);
            let required = self.some_of(role.certs, 0, role.certs.len());
            let start = day0 + Duration::days(self.rng.random_range(0..45));
            let (low, high) = role.pay;
            let pay = low + (high - low) * self.rng.random_range(0.4..1.0);
            let openings: u32 = self.rng.random_range(1..=10);
            let shift = *self.pick(SHIFTS);
            let status = match self.rng.random_range(0..10) {
                0..7 => "open",
                7..9 => "filled",
                _ => "cancelled",
            };
            let skills = self.some_of(role.skills, 2, 3);
            let mut description = format!(
                "{} needs {openings} {} ({shift} shift) at our {} in {city}, {state}.",
                client.name,
                role.title.to_lowercase(),
                role.site
            );
            if !required.is_empty() {
                let _ = write!(description, " Must hold {}.", required.join(" and "));
            }
            let description = self.wrap(
                description,
                &format!(
                    "Experience with {} preferred. Starts {start}, ${} per hour.",
                    skills.join(", "),
                    money(pay)
                ),
            );
            let created = start - Duration::days(self.rng.random_range(3..30));
            table.rows.push(vec![
                Some(id.clone()),
                Some(client.id.clone()),
                Some(role.title.to_owned()),
                Some(description),
                Some(self.pad(city)),
                Some(state.to_owned()),
                Some(format!("{lat:.5}")),
                Some(format!("{lon:.5}")),
                Some(radius.to_string()),
                (!required.is_empty()).then(|| required.join(";")),
                Some(start.to_string()),
                Some(money(pay)),
                Some(openings.to_string()),
                Some(shift.to_owned()),
                Some(status.to_owned()),
                Some(format!("{created}T09:{:02}:00Z", i % 60)),
            ]);
            list.push(OrderRow {
                id,
                client: client.id.clone(),
                role: role_at,
                start,
                pay,
            });
        }
        Orders { table, list }
    }

    fn placements(&mut self, n: usize, workers: &Workers, orders: &Orders) -> Placements {
        let mut table = Table::new(&[
            "placement_id",
            "order_id",
            "worker_id",
            "client_id",
            "start_date",
            "end_date",
            "bill_rate",
            "pay_rate",
            "status",
        ]);
        let mut list = Vec::with_capacity(n);
        if workers.list.is_empty() || orders.list.is_empty() {
            return Placements { table, list };
        }
        for i in 0..n {
            let order = &orders.list[self.rng.random_range(0..orders.list.len())];
            // Prefer a worker of the order's role; any worker when a few draws find none.
            let mut worker = &workers.list[self.rng.random_range(0..workers.list.len())];
            for _ in 0..8 {
                if worker.role == order.role {
                    break;
                }
                worker = &workers.list[self.rng.random_range(0..workers.list.len())];
            }
            let start = order.start - Duration::days(self.rng.random_range(0..240));
            let weeks = self.rng.random_range(1..=26);
            let end = start + Duration::weeks(weeks);
            let (end, status) = if end > reference_day() {
                (None, "active")
            } else if self.chance(0.1) {
                (Some(end), "terminated")
            } else {
                (Some(end), "completed")
            };
            let pay = order.pay.max(worker.pay_min);
            let bill = pay * self.rng.random_range(1.35..1.65);
            table.rows.push(vec![
                Some(format!("P-{:06}", i + 1)),
                Some(order.id.clone()),
                Some(worker.id.clone()),
                Some(order.client.clone()),
                Some(start.to_string()),
                end.map(|d| d.to_string()),
                Some(money(bill)),
                Some(money(pay)),
                Some(status.to_owned()),
            ]);
            list.push(Placement {
                id: format!("P-{:06}", i + 1),
                worker: worker.id.clone(),
                start,
                end,
            });
        }
        Placements { table, list }
    }

    fn timesheets(&mut self, placements: &Placements) -> Table {
        let mut table = Table::new(&[
            "timesheet_id",
            "placement_id",
            "worker_id",
            "week_ending",
            "regular_hours",
            "overtime_hours",
            "status",
            "submitted_at",
        ]);
        let mut n = 0usize;
        for placement in &placements.list {
            let last = placement.end.unwrap_or_else(reference_day);
            // Weeks end on Sunday: the first Sunday on or after the start.
            let mut week = placement.start
                + Duration::days(i64::from(
                    (7 - chrono::Datelike::weekday(&placement.start).num_days_from_sunday()) % 7,
                ));
            let mut weeks = 0;
            while week <= last && weeks < 12 {
                n += 1;
                let regular = f64::from(self.rng.random_range(24..=40u32))
                    + if self.chance(0.3) { 0.5 } else { 0.0 };
                let overtime = if self.chance(0.25) {
                    f64::from(self.rng.random_range(1..=12u32))
                } else {
                    0.0
                };
                let status = match self.rng.random_range(0..20) {
                    0..16 => "approved",
                    16..19 => "pending",
                    _ => "rejected",
                };
                let submitted = week + Duration::days(self.rng.random_range(1..4));
                table.rows.push(vec![
                    Some(format!("T-{n:07}")),
                    Some(placement.id.clone()),
                    Some(placement.worker.clone()),
                    Some(week.to_string()),
                    Some(format!("{regular:.1}")),
                    Some(format!("{overtime:.1}")),
                    Some(status.to_owned()),
                    Some(format!("{submitted}T{:02}:30:00Z", 8 + n % 10)),
                ]);
                week += Duration::weeks(1);
                weeks += 1;
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, table: &str) -> String {
        std::fs::read_to_string(dir.join(format!("{table}.csv"))).expect("file")
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = tempfile::tempdir().expect("dir");
        let b = tempfile::tempdir().expect("dir");
        let options = Options {
            workers: 200,
            seed: 7,
            messy: false,
        };
        let written = generate(a.path(), &options).expect("generate");
        generate(b.path(), &options).expect("generate");
        for table in TABLES {
            assert_eq!(read(a.path(), table), read(b.path(), table), "{table}");
        }
        let rows = |t: &str| written.iter().find(|w| w.table == t).map_or(0, |w| w.rows);
        assert_eq!(rows("workers"), 200);
        assert_eq!(rows("job_orders"), 40);
        assert!(rows("timesheets") > rows("placements"));
        let c = tempfile::tempdir().expect("dir");
        generate(c.path(), &Options { seed: 8, ..options }).expect("generate");
        assert_ne!(read(a.path(), "workers"), read(c.path(), "workers"));
    }

    #[test]
    fn workers_look_real() {
        let dir = tempfile::tempdir().expect("dir");
        generate(
            dir.path(),
            &Options {
                workers: 500,
                seed: 1,
                messy: false,
            },
        )
        .expect("generate");
        let workers = read(dir.path(), "workers");
        let header = workers.lines().next().expect("header");
        assert!(
            header.starts_with("worker_id,first_name,last_name,email,phone,city,state,lat,lon,")
        );
        for status in ["active", "inactive", "placed", "do_not_rehire"] {
            assert!(workers.contains(&format!(",{status},")), "{status}");
        }
        assert!(workers.contains("OSHA 10"));
        assert!(workers.contains("Forklift Operator"));
        assert!(!workers.contains('\r'));
    }

    #[test]
    fn messy_files_carry_export_faults() {
        let dir = tempfile::tempdir().expect("dir");
        generate(
            dir.path(),
            &Options {
                workers: 400,
                seed: 3,
                messy: true,
            },
        )
        .expect("generate");
        let workers = read(dir.path(), "workers");
        assert!(workers.starts_with('\u{feff}'), "byte-order mark");
        assert!(workers.contains("\r\n"), "CRLF");
        assert!(workers.contains("\"\""), "quoted empty values");
        assert!(workers.contains(".\nBased in"), "a quoted line break");
        assert!(workers.contains(",\" "), "padded values");
        assert!(
            workers.contains("+1 ") && workers.contains(") 555-"),
            "mixed phone formats"
        );
    }
}
