//! `iisbulk export`: a Bulk Data client for our own users and tests: token,
//! kick-off, polls that honour Retry-After, downloads.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::client::token::{access_token, TokenArgs};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    client: TokenArgs,
    /// The Group to export (the Authorized User's own).
    #[arg(long)]
    group: String,
    /// Where the NDJSON files and manifest.json are written.
    #[arg(long)]
    out: PathBuf,
    /// Only what changed after this FHIR instant (e.g. a previous transactionTime).
    #[arg(long)]
    since: Option<String>,
    /// Resource types, comma-separated (Patient,Immunization,Group,Organization by
    /// default; ImmunizationRecommendation, the CDSi forecasts, only when named).
    #[arg(long = "type")]
    types: Option<String>,
    /// A `_typeFilter` query, e.g. 'Immunization?date=ge2024-01-01&status=completed';
    /// repeat for several (ORed for one type).
    #[arg(long = "type-filter")]
    type_filters: Vec<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

pub async fn run(args: ExportArgs) -> ExitCode {
    match export(args).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("iisbulk export: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) async fn export(args: ExportArgs) -> Result<String, String> {
    let mut access = access_token(args.client.clone()).await?;
    // Tokens are short-lived and a big export outlasts one: a 401 while
    // polling or downloading earns a fresh token, a few times at most.
    let mut renewals = 0;
    let http = reqwest::Client::new();
    let base = args.client.url.trim_end_matches('/');
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &args.since {
        query.push(("_since", s.clone()));
    }
    if let Some(t) = &args.types {
        query.push(("_type", t.clone()));
    }
    for f in &args.type_filters {
        query.push(("_typeFilter", f.clone()));
    }
    let kick = http
        .get(format!("{base}/fhir/Group/{}/$export", args.group))
        .query(&query)
        .bearer_auth(&access)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .map_err(|e| format!("kick-off: {e}"))?;
    if kick.status().as_u16() != 202 {
        let status = kick.status().as_u16();
        return Err(format!(
            "kick-off: HTTP {status}: {}",
            kick.text().await.unwrap_or_default()
        ));
    }
    let status_url = kick
        .headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .ok_or("kick-off: no Content-Location")?
        .to_owned();
    let started = Instant::now();
    let manifest: Value = loop {
        let r = http
            .get(&status_url)
            .bearer_auth(&access)
            .send()
            .await
            .map_err(|e| format!("status: {e}"))?;
        match r.status().as_u16() {
            200 => {
                break serde_json::from_str(&r.text().await.map_err(|e| format!("status: {e}"))?)
                    .map_err(|e| format!("manifest: {e}"))?
            }
            202 | 429 => {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(2)
                    .clamp(1, 60);
                if started.elapsed() > Duration::from_secs(args.timeout) {
                    return Err(format!("no manifest after {} s", args.timeout));
                }
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            401 if renewals < 3 => {
                renewals += 1;
                access = access_token(args.client.clone()).await?;
            }
            other => {
                return Err(format!(
                    "status: HTTP {other}: {}",
                    r.text().await.unwrap_or_default()
                ))
            }
        }
    };
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut lines = Vec::new();
    for section in ["output", "deleted", "error"] {
        for (n, f) in manifest[section]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let url = f["url"].as_str().ok_or("a manifest entry has no url")?;
            // Named by section, type and position: file URLs may repeat a
            // last segment (one per shard) or be opaque (presigned).
            let kind: String = f["type"]
                .as_str()
                .unwrap_or("file")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let name = format!("{section}-{kind}-{:04}.ndjson", n + 1);
            // Presigned URLs carry their own authorization.
            let needs_token = manifest["requiresAccessToken"] != Value::Bool(false);
            // Files are stored gzip: asked for as they are stored, and
            // inflated here (a presigned S3 GET sends them gzip-encoded anyway).
            let get = |access: &str| {
                let r = http.get(url).header("accept-encoding", "gzip");
                if needs_token {
                    r.bearer_auth(access)
                } else {
                    r
                }
            };
            let mut r = get(&access)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if r.status().as_u16() == 401 && needs_token && renewals < 3 {
                renewals += 1;
                access = access_token(args.client.clone()).await?;
                r = get(&access)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
            }
            if !r.status().is_success() {
                return Err(format!("GET {url}: HTTP {}", r.status().as_u16()));
            }
            let path = args.out.join(&name);
            let mut file =
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let gzip = r
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let mut inflate = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
            let disk = |e: std::io::Error| format!("{}: {e}", path.display());
            let bad_gzip = |e: std::io::Error| format!("GET {url}: bad gzip: {e}");
            // Streamed to disk chunk by chunk: files can be large.
            while let Some(chunk) = r.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
                match &mut inflate {
                    Some(gz) => {
                        std::io::Write::write_all(gz, &chunk).map_err(bad_gzip)?;
                        std::io::Write::write_all(&mut file, &std::mem::take(gz.get_mut()))
                            .map_err(disk)?;
                    }
                    None => std::io::Write::write_all(&mut file, &chunk).map_err(disk)?,
                }
            }
            if let Some(mut gz) = inflate {
                gz.try_finish().map_err(bad_gzip)?;
                std::io::Write::write_all(&mut file, &std::mem::take(gz.get_mut()))
                    .map_err(disk)?;
            }
            lines.push(format!(
                "{name}\t{}\t{}",
                f["type"].as_str().unwrap_or(""),
                f["count"]
            ));
        }
    }
    let manifest_path = args.out.join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    Ok(format!(
        "transactionTime {}\n{}\nmanifest and files in {}",
        manifest["transactionTime"].as_str().unwrap_or(""),
        lines.join("\n"),
        args.out.display()
    ))
}
