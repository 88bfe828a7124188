//! `iisbulk serve`: every HTTP function of the IIS on one local port, over
//! the embedded store, with structured logs and a graceful shutdown.

use crate::data_dir;
use clap::Args;
use ingest::{IngestConfig, IngestDeps};
use registry::{AuError, AuKind, AuthorizedUsers, NewAuthorizedUser};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Data directory (created if missing).
    #[arg(long, default_value = data_dir::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Largest HL7 message accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_message_bytes: usize,
    /// Public base URL used in the WSDL (default: from the Host header).
    #[arg(long)]
    public_url: Option<String>,
    /// MSH-3 of the IIS's answers.
    #[arg(long, default_value = "IISBULK")]
    iis_application: String,
    /// MSH-4 of the IIS's answers.
    #[arg(long, default_value = "IIS")]
    iis_facility: String,
    /// Extra CVX/MVX codes (tab-separated VALUESET, CODE, DESCRIPTION lines).
    #[arg(long, value_name = "FILE")]
    code_supplement: Option<PathBuf>,
    /// A patient-matching configuration (TOML; see shared/matching/config)
    /// instead of the shipped iis-fs-2.
    #[arg(long, value_name = "FILE")]
    matching_config: Option<PathBuf>,
    /// Most candidates a Z31 query answer lists, whatever RCP-2 asks.
    #[arg(long, default_value_t = 10)]
    max_query_candidates: u32,
    /// The CDC CDSi supporting data Z44 answers (evaluated history and
    /// forecast), `$immds-forecast` and exported ImmunizationRecommendations
    /// use: CDC's XML folder (ScheduleSupportingData.xml and
    /// AntigenSupportingData*.xml) instead of the built-in release 4.64.
    /// A folder that does not load stops start-up.
    #[arg(long, value_name = "DIR")]
    cdsi_data: Option<PathBuf>,
    /// The release name Z42 answers state for --cdsi-data; by default taken
    /// from the folder's name ("Version 4.65 - 508/XML" gives "4.65").
    #[arg(long, value_name = "VERSION", requires = "cdsi_data")]
    cdsi_version: Option<String>,
    /// Create the demo Authorized User (username `demo`, password
    /// `demo-password-1`) whose facilities are those of the sample messages
    /// in testdata/corpus/hl7, if it does not exist. Never on real data.
    #[arg(long)]
    demo: bool,
    /// The jurisdiction's Group membership policy (TOML; see
    /// policy/jurisdiction.toml, the default).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Failed attempts (storage trouble not counted) before the matcher,
    /// membership or export consumer parks a change it cannot apply and
    /// moves on; `iisbulk feed parked` lists parked changes and a restart
    /// tries them again.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    park_after: u32,
    /// SMART token requests one address may make at once (a host serving
    /// many clients from one address may need more).
    #[arg(long, default_value_t = bulk_api::RateLimit::TOKEN_ENDPOINT.burst)]
    token_burst: u32,
    /// SMART token requests a second one address may keep making.
    #[arg(long, default_value_t = bulk_api::RateLimit::TOKEN_ENDPOINT.per_second)]
    token_rate_per_second: f64,
    /// Most patients one `Patient/$bulk-match` request may hold (413 above).
    #[arg(long, default_value_t = registry::fhir_match::DEFAULT_BULK_MAX_PATIENTS, value_parser = parse_positive)]
    bulk_match_max_patients: usize,
    /// Largest `Patient/$bulk-match` request body, in bytes (413 above).
    #[arg(long, default_value_t = registry::bulk_match::DEFAULT_MAX_BODY_BYTES, value_parser = parse_positive)]
    bulk_match_max_bytes: usize,
    /// `Patient/$bulk-match` jobs one Authorized User may have queued or
    /// running at once (429 above).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    bulk_match_per_user: u32,
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number above 0")),
    }
}

pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo-password-1";
/// The demo's console reviewer (`serve --demo`, `iisbulk demo`).
pub const DEMO_REVIEWER: &str = "demo-reviewer";
pub const DEMO_REVIEWER_PASSWORD: &str = "demo-reviewer-password";
pub const DEMO_FACILITIES: [&str; 9] = [
    "NISTEHRFAC",
    "1255-60-20",
    "1337-44-01",
    "DCS",
    "SendingOrg",
    "X68",
    "wcEHR",
    // The children `iisbulk demo` makes up.
    "DEMOGEN",
    // The birth hospital whose newborn records the demo leaves for review.
    "DEMOHOSP",
];

pub async fn run(args: ServeArgs) -> ExitCode {
    init_tracing("info");
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iisbulk serve: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn init_tracing(default: &str) {
    // Info carries no PHI: ids, codes and timings only. Message bodies are
    // never logged at any level.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // The log goes to stderr: stdout carries only the lines scripts read.
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in a log file or pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let started = start(args).await?;
    // A line tests and scripts can wait for.
    println!("iisbulk listening on http://{}", started.local);
    println!(
        "console API: http://{}/console/api/ (OpenAPI at /console/api/openapi.json)",
        started.local
    );
    started.run().await
}

/// A started local IIS: bound, its workers running, not yet serving.
pub struct Started {
    pub local: SocketAddr,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    /// The data directory's lender file, removed at shutdown.
    lender_file: std::path::PathBuf,
}

impl Started {
    /// Serves until Ctrl-C or SIGTERM, then finishes requests in flight.
    pub async fn run(self) -> Result<(), String> {
        axum::serve(
            self.listener,
            self.app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))?;
        let _ = std::fs::remove_file(&self.lender_file);
        tracing::info!("stopped");
        Ok(())
    }
}

/// Opens the data directory, starts the stream workers and binds the port.
pub async fn start(args: ServeArgs) -> Result<Started, String> {
    if let Some(path) = &args.code_supplement {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--code-supplement {}: {e}", path.display()))?;
        let n = iz::profile::install_code_supplement(&text)
            .map_err(|e| format!("--code-supplement {}: {e}", path.display()))?;
        tracing::info!(codes = n, "code supplement installed");
    }
    // Bad limits and a bad policy stop start-up here, before anything is
    // opened or served.
    let token_limit = bulk_api::RateLimit::new(args.token_burst, args.token_rate_per_second)
        .map_err(|e| format!("--token-burst / --token-rate-per-second: {e}"))?;
    let policy = Arc::new(crate::policy::load(args.policy.as_deref())?);
    tracing::info!(
        policy = %policy.version,
        association = ?policy.association,
        qbp = policy.qbp,
        "jurisdiction policy"
    );
    // So does supporting data that does not load.
    let cdsi_data = match &args.cdsi_data {
        Some(dir) => Some(Arc::new(crate::cdsi_data::load(
            dir,
            args.cdsi_version.as_deref(),
        )?)),
        None => None,
    };
    let cdsi_version = match &cdsi_data {
        Some(data) => data.version.clone(),
        None => cdsi::builtin()
            .map_err(|e| format!("the built-in CDSi supporting data: {e}"))?
            .version
            .clone(),
    };
    tracing::info!(
        version = %cdsi_version,
        pinned = cdsi_data.is_some(),
        "CDSi supporting data for Z44, $immds-forecast and exported forecasts"
    );
    let store = data_dir::open(&args.data_dir)?;
    let dyn_store: Arc<dyn store::ItemStore> = store.clone();
    let dyn_store_for_jobs = dyn_store.clone();
    let users = AuthorizedUsers::new(dyn_store.clone());
    if args.demo {
        seed_demo(&users, &policy).await?;
        seed_demo_reviewer(dyn_store.clone()).await?;
    }
    let iis = iz::IisIdentity {
        application: args.iis_application.clone(),
        facility: args.iis_facility.clone(),
        ..iz::IisIdentity::default()
    };
    let matcher = match &args.matching_config {
        Some(path) => Arc::new(matching::Matcher::new(settings::matching_config_file(
            path,
            "--matching-config",
        )?)),
        None => matching::Matcher::built_in(),
    };
    tracing::info!(config = %matcher.config().version, "patient matching");
    let matching = registry::patients::PatientMatching::new(dyn_store.clone(), matcher.clone())
        .with_vaccination_rules(policy.vaccination_events.clone());
    let retry = crate::event_bus::consumer::Retry {
        attempts: args.park_after,
        ..Default::default()
    };
    tokio::spawn(crate::event_bus::matcher_loop::run(
        store.clone(),
        store.clone(),
        retry,
        matching.clone(),
    ));
    tokio::spawn(crate::event_bus::membership_loop::run(
        store.clone(),
        store.clone(),
        retry,
        registry::membership::Membership::new(matching.persons().clone(), policy.clone()),
    ));
    let deps = Arc::new(IngestDeps::new(
        dyn_store,
        iis,
        IngestConfig {
            max_message_bytes: args.max_message_bytes,
            public_url: args.public_url.clone(),
            matcher,
            query_policy: registry::queries::QueryPolicy {
                max_candidates: args.max_query_candidates,
                jurisdiction: policy.clone(),
                cdsi_data: cdsi_data.clone(),
                ..Default::default()
            },
        },
    ));
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;
    // Client assertions must name the token endpoint exactly: its URL is
    // fixed at start-up, from --public-url or the address we listen on.
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let mut bulk = bulk_api::BulkDeps::new(
        matching.persons().clone(),
        policy.clone(),
        &public_url,
        Arc::new(bulk_api::HttpJwks::new()?),
    );
    let blob_dir = args.data_dir.join("blobs");
    let blobs = store::DirBlobStore::open(&blob_dir)
        .map_err(|e| format!("export files in {}: {e}", blob_dir.display()))?;
    let mut jobs = registry::export::ExportJobs::new(
        matching.persons().clone(),
        Arc::new(blobs),
        &policy.identifier_base,
    );
    jobs.cdsi_data = cdsi_data.clone();
    bulk.cdsi_data = cdsi_data;
    tokio::spawn(crate::event_bus::export_loop::run(
        store.clone(),
        store.clone(),
        retry,
        jobs.clone(),
    ));
    tokio::spawn(crate::event_bus::feed_trim::run(
        store.clone(),
        std::time::Duration::from_secs(60),
    ));
    bulk.exports = Some(jobs);
    // Patient/$match and bulk match answer as a Z34 does: the same
    // matcher and rules, built as the stack's functions build them.
    let queries = settings::match_queries(
        matching.clone(),
        policy.clone(),
        Some(args.max_query_candidates),
    );
    bulk.queries = Some(queries.clone());
    // Patient/$bulk-match: jobs run by a worker task of this process, with
    // their inputs and results next to the export files.
    let bulk_match_blobs = store::DirBlobStore::open(&blob_dir)
        .map_err(|e| format!("bulk match files in {}: {e}", blob_dir.display()))?;
    let mut bulk_match = registry::bulk_match::BulkMatchJobs::new(
        dyn_store_for_jobs.clone(),
        Arc::new(bulk_match_blobs),
        queries,
        &bulk.fhir_base(),
        &policy.identifier_base,
    );
    bulk_match.max_patients = args.bulk_match_max_patients;
    bulk_match.max_body_bytes = args.bulk_match_max_bytes;
    bulk_match.max_active_per_au = args.bulk_match_per_user;
    tokio::spawn(crate::event_bus::bulk_match_loop::run(bulk_match.clone()));
    bulk.bulk_match = Some(bulk_match);
    bulk.token_limiter = Arc::new(bulk_api::SourceLimiter::new(token_limit));
    let console = console::ConsoleDeps::new(matching.clone(), policy.clone(), &public_url);
    // The admin commands borrow the store while we hold it: a fresh token
    // each start, announced in the data directory to its owner only.
    let admin_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let loopback = if local.ip().is_unspecified() {
        SocketAddr::new(
            match local {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            },
            local.port(),
        )
    } else {
        local
    };
    let lender_file = data_dir::write_lender(
        &args.data_dir,
        &data_dir::Lender {
            url: format!("http://{loopback}"),
            token: admin_token.clone(),
            pid: std::process::id(),
        },
    )?;
    let app = ingest::router(deps)
        .merge(bulk_api::router(Arc::new(bulk)))
        .merge(console::router(Arc::new(console)))
        .merge(store_remote::router(store.clone(), admin_token));
    tracing::info!(
        address = %local,
        data_dir = %args.data_dir.display(),
        fhir = %format!("{public_url}/fhir"),
        "iisbulk listening: POST /hl7, POST /soap, GET /soap?wsdl, POST /auth/token, GET /fhir/…, /console/api/…"
    );
    Ok(Started {
        local,
        listener,
        app,
        lender_file,
    })
}

/// A console reviewer for the demo (once; an existing one is kept).
pub async fn seed_demo_reviewer(store: Arc<dyn store::ItemStore>) -> Result<(), String> {
    let staff = registry::staff::Staff::new(store);
    let reviewer = registry::staff::NewStaff {
        username: DEMO_REVIEWER.into(),
        role: registry::staff::StaffRole::Reviewer,
        password: DEMO_REVIEWER_PASSWORD.into(),
    };
    match staff.add(reviewer, iz::Clock::now().unix_seconds).await {
        Ok(_) => {
            println!(
                "demo console reviewer created: username '{DEMO_REVIEWER}', password '{DEMO_REVIEWER_PASSWORD}' (POST /console/api/session)"
            );
            Ok(())
        }
        Err(registry::staff::StaffError::UsernameTaken(_)) => Ok(()),
        Err(e) => Err(format!("creating the demo console reviewer: {e}")),
    }
}

pub async fn seed_demo(
    users: &AuthorizedUsers,
    policy: &registry::membership::JurisdictionPolicy,
) -> Result<(), String> {
    let demo = NewAuthorizedUser {
        id: "demo-clinic".into(),
        kind: AuKind::Clinic,
        name: "Demo clinic (sample messages)".into(),
        facilities: DEMO_FACILITIES.iter().map(|s| s.to_string()).collect(),
        username: DEMO_USER.into(),
        password: DEMO_PASSWORD.into(),
    };
    match registry::membership::onboard(users, demo, iz::Clock::now().unix_seconds, policy).await {
        Ok(au) => {
            println!(
                "demo Authorized User created: username '{DEMO_USER}', password '{DEMO_PASSWORD}', Group {}",
                au.group.as_deref().unwrap_or("(none under this policy)")
            );
            Ok(())
        }
        Err(AuError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(format!("creating the demo Authorized User: {e}")),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
