//! `iisbulk send`: the client side, to see the whole exchange from a second
//! terminal, and a load generator for the ingest benchmark.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Base URL of the IIS.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// Use the CDC SOAP service instead of POST /hl7.
    #[arg(long)]
    soap: bool,
    /// SOAP facilityID (default: each message's MSH-4.1).
    #[arg(long)]
    facility: Option<String>,
    /// Load mode: send every file this many times, each copy with a distinct
    /// MSH-10, and report throughput and latency instead of the answers.
    #[arg(long)]
    repeat: Option<usize>,
    /// Requests in flight at once (load mode).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// In load mode, also report this process's peak RSS (e.g. the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Message files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn msh4(msg: &str) -> String {
    msg.split(['\r', '\n'])
        .next()
        .and_then(|msh| msh.split('|').nth(3))
        .and_then(|f| f.split('^').next())
        .unwrap_or("")
        .to_string()
}

/// A copy of `msg` whose MSH-10 ends with `-<n>`, so the IIS sees a new message.
fn with_control_suffix(msg: &str, n: usize) -> String {
    let (first, rest) = match msg.find(['\r', '\n']) {
        Some(i) => msg.split_at(i),
        None => (msg, ""),
    };
    let mut fields: Vec<String> = first.split('|').map(str::to_string).collect();
    if fields.len() > 9 {
        fields[9] = format!("{}-{n}", fields[9]);
    }
    format!("{}{rest}", fields.join("|"))
}

fn soap_envelope(user: &str, password: &str, facility: &str, hl7: &str) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\r', "&#13;")
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:urn=\"urn:cdc:iisb:2011\">\
<soap:Body><urn:submitSingleMessage><urn:username>{}</urn:username><urn:password>{}</urn:password>\
<urn:facilityID>{}</urn:facilityID><urn:hl7Message>{}</urn:hl7Message></urn:submitSingleMessage></soap:Body></soap:Envelope>",
        esc(user),
        esc(password),
        esc(facility),
        esc(hl7)
    )
}

struct Client {
    http: reqwest::Client,
    args: SendArgs,
}

impl Client {
    /// Sends one message; returns the HTTP status and the HL7 answer (or the
    /// body as text when there is none).
    async fn send(&self, msg: &str) -> Result<(u16, String), String> {
        let a = &self.args;
        let base = a.url.trim_end_matches('/');
        let res = if a.soap {
            let facility = a.facility.clone().unwrap_or_else(|| msh4(msg));
            self.http
                .post(format!("{base}/soap"))
                .header("content-type", "application/soap+xml; charset=utf-8")
                .body(soap_envelope(&a.user, &a.password, &facility, msg))
                .send()
                .await
        } else {
            self.http
                .post(format!("{base}/hl7"))
                .basic_auth(&a.user, Some(&a.password))
                .header("content-type", "application/hl7-v2")
                .body(msg.to_string())
                .send()
                .await
        }
        .map_err(|e| format!("{base}: {e}"))?;
        let status = res.status().as_u16();
        let text = res
            .text()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if a.soap && status == 200 {
            return Ok((status, soap_return(&text).unwrap_or(text)));
        }
        Ok((status, text))
    }
}

/// The HL7 answer inside a submitSingleMessageResponse.
fn soap_return(xml: &str) -> Option<String> {
    let start = xml.find("return>")? + "return>".len();
    let end = start + xml[start..].find("</")?;
    Some(
        xml[start..end]
            .replace("&#13;", "\r")
            .replace("&#xD;", "\r")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

pub async fn run(args: SendArgs) -> ExitCode {
    let mut messages = Vec::new();
    for f in &args.files {
        match std::fs::read(f) {
            Ok(b) => messages.push((f.clone(), String::from_utf8_lossy(&b).into_owned())),
            Err(e) => {
                eprintln!("iisbulk send: {}: {e}", f.display());
                return ExitCode::from(2);
            }
        }
    }
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.concurrency.max(1))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("iisbulk send: {e}");
            return ExitCode::from(2);
        }
    };
    let repeat = args.repeat;
    let client = Arc::new(Client { http, args });
    match repeat {
        None => send_each(&client, &messages).await,
        Some(n) => load(client, messages, n).await,
    }
}

async fn send_each(client: &Client, messages: &[(PathBuf, String)]) -> ExitCode {
    let mut worst = ExitCode::SUCCESS;
    for (path, msg) in messages {
        println!("==> {}", path.display());
        match client.send(msg).await {
            Ok((status, answer)) => {
                if status != 200 {
                    println!("HTTP {status}");
                    worst = ExitCode::from(1);
                }
                println!("{}", answer.replace('\r', "\n").trim_end());
            }
            Err(e) => {
                eprintln!("iisbulk send: {e}");
                return ExitCode::from(2);
            }
        }
    }
    worst
}

async fn load(client: Arc<Client>, messages: Vec<(PathBuf, String)>, repeat: usize) -> ExitCode {
    let run_id = iz::Clock::now().unix_seconds;
    let mut jobs: Vec<String> = Vec::with_capacity(messages.len() * repeat);
    for r in 0..repeat {
        for (_, m) in &messages {
            jobs.push(with_control_suffix(m, r));
        }
    }
    // Distinct per run too, so a second run against the same data is new traffic.
    let jobs: Vec<String> = jobs
        .into_iter()
        .map(|m| with_control_suffix(&m, run_id as usize))
        .collect();
    let total = jobs.len();
    let queue = Arc::new(tokio::sync::Mutex::new(jobs));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..client.args.concurrency.max(1) {
        let queue = queue.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let Some(msg) = queue.lock().await.pop() else {
                    break;
                };
                let t = Instant::now();
                match client.send(&msg).await {
                    Ok((200, answer)) if answer.contains("MSA|A") => {
                        latencies.push(t.elapsed());
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        if let Ok((l, f)) = t.await {
            latencies.extend(l);
            failures += f;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "sent {total} messages in {:.2} s with concurrency {}: {:.0} messages/s; {} answered, {failures} failed",
        elapsed.as_secs_f64(),
        client.args.concurrency,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies.len()
    );
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    if let Some(pid) = client.args.server_pid {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(s) => {
                if let Some(line) = s.lines().find(|l| l.starts_with("VmHWM")) {
                    println!(
                        "server peak RSS ({pid}): {}",
                        line.trim_start_matches("VmHWM:").trim()
                    );
                }
            }
            Err(e) => eprintln!("cannot read /proc/{pid}/status: {e}"),
        }
    }
    if failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_suffix_changes_only_msh_10() {
        let m = "MSH|^~\\&|A|F||R|20250101||VXU^V04^VXU_V04|CTRL|P|2.5.1\rPID|1\r";
        assert_eq!(
            with_control_suffix(m, 7),
            "MSH|^~\\&|A|F||R|20250101||VXU^V04^VXU_V04|CTRL-7|P|2.5.1\rPID|1\r"
        );
        assert_eq!(msh4(m), "F");
    }

    #[test]
    fn soap_return_unescapes() {
        let xml = "<x:return>MSH|^~\\&amp;|A&#13;MSA|AA|1&#13;</x:return>";
        assert_eq!(soap_return(xml).unwrap(), "MSH|^~\\&|A\rMSA|AA|1\r");
    }
}
