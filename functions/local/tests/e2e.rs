//! End to end over real HTTP: a child `iisbulk serve` on embedded storage,
//! driven the way an EHR drives an IIS (POST /hl7 and the CDC SOAP service).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo-password-1";

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/hl7")
}

fn corpus(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(".hl7")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

struct Server {
    child: Child,
    url: String,
    /// The matcher's "message matched" log lines, as they come.
    matched: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
            .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The log: warnings and errors shown as before, the matcher's lines
        // handed to the test.
        let stderr = child.stderr.take().unwrap();
        let (tx, matched) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" WARN ") || line.contains(" ERROR ") {
                    eprintln!("{line}");
                }
                if line.contains("message matched") {
                    let _ = tx.send(line);
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("iisbulk serve exited before listening")
                .unwrap();
            if let Some(u) = line.strip_prefix("iisbulk listening on ") {
                break u.trim().to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            url,
            matched,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post_hl7(url: &str, user: &str, pass: &str, body: Vec<u8>) -> (u16, String) {
    let r = client()
        .post(format!("{url}/hl7"))
        .basic_auth(user, Some(pass))
        .header("content-type", "application/hl7-v2")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#13;")
}

async fn post_soap(url: &str, user: &str, pass: &str, facility: &str, hl7: &str) -> (u16, String) {
    let env = format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>\
<submitSingleMessage xmlns=\"urn:cdc:iisb:2011\"><username>{}</username><password>{}</password>\
<facilityID>{}</facilityID><hl7Message><![CDATA[{}]]></hl7Message></submitSingleMessage></s:Body></s:Envelope>",
        xml_escape(user),
        xml_escape(pass),
        xml_escape(facility),
        hl7.replace('\r', "\n")
    );
    let r = client()
        .post(format!("{url}/soap"))
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(env)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn msa1(answer: &str) -> String {
    answer
        .split(['\r', '\n'])
        .find(|s| s.starts_with("MSA|"))
        .and_then(|s| s.split('|').nth(1))
        .unwrap_or("")
        .to_string()
}

fn msh4(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    text.trim_start_matches('\u{feff}')
        .split(['\r', '\n'])
        .next()
        .and_then(|m| m.split('|').nth(3))
        .and_then(|f| f.split('^').next())
        .unwrap_or("")
        .to_string()
}

fn msh10(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    text.split(['\r', '\n'])
        .next()
        .and_then(|m| m.split('|').nth(9))
        .unwrap_or("")
        .to_string()
}

/// What the IIS answers without any server: the HL7 engine alone.
fn expected_ack(msg: &[u8]) -> String {
    let r = iz::respond(msg, &iz::IisIdentity::default(), iz::Clock::now());
    r.ack_code.map(|c| c.code().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn corpus_over_rest_and_soap_with_resends() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let url = &server.url;
    let mut checked = 0;
    let mut control_ids = std::collections::HashSet::new();
    for (name, msg) in corpus("vxu-") {
        // Two corpus messages from facility X68 reuse one MSH-10: the second
        // is refused as a duplicate control id (ERR 205), as it must be.
        let first_use = control_ids.insert((msh4(&msg), msh10(&msg)));
        let want = if msh4(&msg).is_empty() || !first_use {
            // No sending facility: nobody can be authorized to send it.
            "AR".to_string()
        } else {
            expected_ack(&msg)
        };
        let (status, first) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, msg.clone()).await;
        assert_eq!(status, 200, "{name}: {first}");
        assert_eq!(msa1(&first), want, "{name} over REST:\n{first}");
        let (_, again) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, msg.clone()).await;
        // Refusals before storage (no facility, reused control id) are not
        // stored, so only stored answers come back byte for byte.
        if !msh4(&msg).is_empty() && first_use && !first.contains("MSA|AR|\"\"") {
            assert_eq!(again, first, "{name}: a resend must return the same bytes");
        }

        // The same message over SOAP, from the same sender: a resend too
        // (SOAP turns CR into LF; the IIS knows it is the same message).
        let text = String::from_utf8_lossy(&msg).into_owned();
        let (status, soap) = post_soap(url, DEMO_USER, DEMO_PASSWORD, &msh4(&msg), &text).await;
        if msh4(&msg).is_empty() || !first_use {
            assert_eq!(status, 200, "{name}: {soap}");
            continue;
        }
        assert_eq!(status, 200, "{name}: {soap}");
        assert!(
            soap.contains("submitSingleMessageResponse"),
            "{name}: {soap}"
        );
        let answer = first.replace('&', "&amp;").replace('\r', "&#13;");
        assert!(
            soap.contains(&answer) || msa1(&first) == "AR",
            "{name}: SOAP resend differs:\n{soap}\nREST:\n{first}"
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} corpus VXUs checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_senders_sizes_and_bad_xml() {
    let dir = tempfile::tempdir().unwrap();
    let add = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["au", "add", "--data-dir"])
        .arg(dir.path())
        .args([
            "--id",
            "other-pharmacy",
            "--kind",
            "pharmacy",
            "--name",
            "Other Pharmacy",
            "--facility",
            "OTHERFAC",
            "--username",
            "other",
            "--password",
            "other-password-1",
        ])
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let server = Server::start(dir.path(), &["--max-message-bytes", "1048576"]);
    let url = &server.url;
    let vxu = std::fs::read(corpus_dir().join("vxu-001.hl7")).unwrap();
    let text = String::from_utf8_lossy(&vxu).into_owned();

    let (status, body) = post_hl7(url, DEMO_USER, "not the password", vxu.clone()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post_soap(url, DEMO_USER, "not the password", "NISTEHRFAC", &text).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("SecurityFault") && !body.contains("MSA|"),
        "{body}"
    );

    // Another Authorized User claiming NISTEHRFAC in MSH-4: rejected, not stored.
    let (status, body) = post_hl7(url, "other", "other-password-1", vxu.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(msa1(&body), "AR", "{body}");
    assert!(body.contains("MSH^1^4"), "{body}");
    let (_, body) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, vxu.clone()).await;
    assert_eq!(
        msa1(&body),
        "AA",
        "the rightful sender's message is new: {body}"
    );

    // 10 MB: 413 over REST, MessageTooLargeFault over SOAP; never a 500.
    let huge = vec![b'A'; 10 * 1024 * 1024];
    let (status, body) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, huge).await;
    assert_eq!(status, 413, "{body}");
    let huge_text = "A".repeat(10 * 1024 * 1024);
    let (status, body) = post_soap(url, DEMO_USER, DEMO_PASSWORD, "NISTEHRFAC", &huge_text).await;
    assert_ne!(status, 500);
    assert!(
        body.contains("MessageTooLargeFault"),
        "{}",
        &body[..body.len().min(500)]
    );

    for bad in [
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>",
        "not xml at all",
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>",
        "",
    ] {
        let r = client()
            .post(format!("{url}/soap"))
            .header("content-type", "application/soap+xml")
            .body(bad)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(body.contains("Fault"), "{bad:?}: {body}");
    }

    let wsdl = client()
        .get(format!("{url}/soap?wsdl"))
        .send()
        .await
        .unwrap();
    assert_eq!(wsdl.status().as_u16(), 200);
    assert!(wsdl.text().await.unwrap().contains(&format!("{url}/soap")));
}

/// A copy of `msg` with MSH-10 replaced.
fn with_control_id(msg: &str, id: &str) -> String {
    let (first, rest) = msg.split_at(msg.find(['\r', '\n']).unwrap_or(msg.len()));
    let mut f: Vec<&str> = first.split('|').collect();
    f[9] = id;
    format!("{}{rest}", f.join("|"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_never_loses_an_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let url = server.url.clone();
    let vxu = String::from_utf8(std::fs::read(corpus_dir().join("vxu-001.hl7")).unwrap()).unwrap();

    // Four senders in a loop, each message new; collect every ACK received.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (url, vxu, acked) = (url.clone(), vxu.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            for i in 0.. {
                let id = format!("CRASH-{t}-{i}");
                let msg = with_control_id(&vxu, &id);
                let r = c
                    .post(format!("{url}/hl7"))
                    .basic_auth(DEMO_USER, Some(DEMO_PASSWORD))
                    .body(msg)
                    .send()
                    .await;
                let Ok(r) = r else { break };
                let Ok(text) = r.text().await else { break };
                if msa1(&text) == "AA" {
                    acked.lock().unwrap().push((id, text));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    unsafe_free_sigkill(&mut server);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "only {} messages acknowledged before the kill",
        acked.len()
    );

    // Restart on the same data: every acknowledged message is there, and a
    // resend returns the stored answer (the same bytes), storing nothing new.
    let server = Server::start(dir.path(), &[]);
    for (id, answer) in &acked {
        let msg = with_control_id(&vxu, id);
        let (status, again) =
            post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, msg.into_bytes()).await;
        assert_eq!(status, 200);
        assert_eq!(&again, answer, "{id}: not stored before its ACK was sent");
    }
    drop(server);

    // Exactly one stored accepted message per acknowledged control id.
    use store::ChangeFeed;
    let store = store::embedded::EmbeddedStore::open(dir.path().join("iis.redb")).unwrap();
    let mut heads = std::collections::HashMap::<String, usize>::new();
    let mut after = None;
    loop {
        let batch = store.read(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = Some(last.seq);
        for c in &batch {
            if c.key.pk.starts_with("IN#") && c.key.sk == "HEAD" && c.old.is_none() {
                let head = c.new.as_ref().unwrap();
                let id = head.key.pk.clone();
                *heads.entry(id).or_default() += 1;
            }
        }
    }
    assert!(heads.values().all(|&n| n == 1));
    assert!(
        heads.len() >= acked.len(),
        "{} heads for {} ACKs",
        heads.len(),
        acked.len()
    );
}

/// SIGKILL via the standard library (Child::kill sends SIGKILL on Unix).
fn unsafe_free_sigkill(server: &mut Server) {
    server.kill();
}

fn logged_person(line: &str) -> String {
    let at = line.find("person=").expect("person in the log line") + "person=".len();
    line[at..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_child_from_two_facilities_becomes_one_person_with_one_copy_of_a_shared_dose() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), &[]);
    let first = std::fs::read(corpus_dir().join("vxu-001.hl7")).unwrap();
    let (status, answer) = post_hl7(&server.url, "demo", "demo-password-1", first).await;
    assert_eq!((status, msa1(&answer).as_str()), (200, "AA"), "{answer}");
    // Another of the demo user's facilities reports the same boy: its own
    // MRN, a nickname, no middle name, and the first HepB as CVX 08.
    let second = "MSH|^~\\&|EHR|DCS|IIS|IISFAC|20150701090000-0500||VXU^V04^VXU_V04|E2E-DCS-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DCS|IISFAC\r\
PID|1||DCS-881^^^DCS^MR||Richardson^Rusty^^^^^L|Billington^^^^^^M|20150415|M|||543 Blount Drive^^Bozeman^MT^59715^USA^P||^PRN^PH^^^406^5557690\r\
NK1|1|Richardson^Maria^Elizabeth^^^^L|MTH^Mother^HL70063\r\
ORC|RE||DCS-D1^DCS\rRXA|0|1|20150416||08^Hep B, adolescent or pediatric^CVX|999|||01^Historical Administration^NIP001|||||||||||CP|A\r";
    let (status, answer) = post_hl7(
        &server.url,
        "demo",
        "demo-password-1",
        second.as_bytes().to_vec(),
    )
    .await;
    assert_eq!((status, msa1(&answer).as_str()), (200, "AA"), "{answer}");
    let a = server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("first message matched");
    let b = server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("second message matched");
    assert_eq!(logged_person(&a), logged_person(&b), "{a}\n{b}");
    assert!(
        b.contains("grade=\"certain\"") || b.contains("grade=certain"),
        "{b}"
    );
    server.kill();

    let show = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["patients", "show", "--data-dir"])
        .arg(data.path())
        .arg(logged_person(&a))
        .output()
        .unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let person: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let history = person["immunizations"].as_array().unwrap();
    // vxu-001's five doses; the second facility's HepB is the same event.
    assert_eq!(history.len(), 5, "{person:#}");
    let hepb = history
        .iter()
        .find(|i| {
            i["order"]["administered"] == serde_json::json!({"year": 2015, "month": 4, "day": 16})
        })
        .unwrap();
    assert_eq!(hepb["sources"].as_array().unwrap().len(), 2);
    assert_eq!(person["sources"].as_array().unwrap().len(), 2);
}

/// Sets MSH-4 (the corpus queries leave it empty; this IIS answers only
/// senders it can authorize).
fn with_msh4(msg: &[u8], facility: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg).into_owned();
    let mut segments: Vec<String> = text
        .split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut fields: Vec<String> = segments[0].split('|').map(str::to_owned).collect();
    fields[3] = facility.to_owned();
    segments[0] = fields.join("|");
    (segments.join("\r") + "\r").into_bytes()
}

/// Keeps an answer for scripts/test's independent check (hl7apy).
fn keep_answer(name: &str, answer: &str) {
    if let Some(dir) = std::env::var_os("IISBULK_QUERY_ANSWERS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            PathBuf::from(dir).join(format!("{name}.answer.hl7")),
            answer.replace('\n', "\r"),
        )
        .unwrap();
    }
}

fn segment<'a>(answer: &'a str, id: &str) -> Vec<&'a str> {
    answer
        .split(['\r', '\n'])
        .filter(|l| l.starts_with(&format!("{id}|")))
        .collect()
}

/// The HL7 answer inside a SOAP submitSingleMessageResponse.
fn soap_return(xml: &str) -> String {
    let start = xml.find("<return>").expect("a <return>") + "<return>".len();
    let end = xml.find("</return>").expect("a </return>");
    xml[start..end]
        .replace("&#13;", "\r")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The OBX rows that follow the segment starting with `at` (up to the
/// next ORC), split into fields.
fn obx_after<'a>(answer: &'a str, at: &str) -> Vec<Vec<&'a str>> {
    answer
        .split(['\r', '\n'])
        .skip_while(|l| !l.starts_with(at))
        .skip(1)
        .take_while(|l| l.starts_with("OBX|"))
        .map(|l| l.split('|').collect())
        .collect()
}

/// OBX-5 of the first row of `rows` with OBX-3 code `code`.
fn obx_value<'a>(rows: &[Vec<&'a str>], code: &str) -> Option<&'a str> {
    rows.iter()
        .find(|o| o[3].split('^').next() == Some(code))
        .map(|o| o[5])
}

/// The child of the corpus query qbp-001 (Cameron Fairchild), reported with
/// the history NIST's expected answer (rsp-001) evaluates: written here from
/// rsp-001, as no corpus VXU reports him. His Hib at four weeks is too young.
const FAIRCHILD_VXU: &str = "MSH|^~\\&|NISTEHRAPP|NISTEHRFAC|NISTIISAPP|NISTIISFAC|20151031145233-0500||VXU^V04^VXU_V04|E2E-FAIRCHILD-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|NISTEHRFAC|NISTIISFAC\r\
PID|1||171122^^^NIST-MPI-1^MR||Fairchild^Cameron^A^^^^L|Fairlady^^^^^^M|20090214|M|||105 Laurel Run Rd^^Bozeman^MT^59715^USA^P\r\
ORC|RE||F-1^NISTEHRFAC\r\
RXA|0|1|20090314||48^Hib PRP-T^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||F-2^NISTEHRFAC\r\
RXA|0|1|20090415||45^Hep B, unspecified formulation^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||F-3^NISTEHRFAC\r\
RXA|0|1|20091011||110^DTaP-Hep B-IPV^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||F-4^NISTEHRFAC\r\
RXA|0|1|20100411||08^Hep B, adolescent or pediatric^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||F-5^NISTEHRFAC\r\
RXA|0|1|20100415||03^MMR^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";

#[tokio::test(flavor = "multi_thread")]
async fn corpus_queries_over_rest_and_soap() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let url = &server.url;
    let vxu = std::fs::read(corpus_dir().join("vxu-001.hl7")).unwrap();
    let (_, ack) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, vxu).await;
    assert_eq!(msa1(&ack), "AA", "{ack}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("vxu-001 matched");

    // A Z34 for the boy of vxu-001: Z32 with his five doses.
    let z34 = "MSH|^~\\&|NISTEHRAPP|NISTEHRFAC|NISTIISAPP|NISTIISFAC|20150625080000-0500||QBP^Q11^QBP_Q11|E2E-Q-1|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|NISTEHRFAC|NISTIISFAC\r\
QPD|Z34^Request Immunization History^CDCPHINVS|E2E-TAG-1|3123^^^NIST-MPI-1^MR|Richardson^Russell^Clint^^^^L|Billington^^^^^^M|20150415|M|543 Blount Drive^^Bozeman^MT^59715^USA^P\r\
RCP|I|5^RD&records&HL70126\r";
    let (status, z32) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, z34.as_bytes().to_vec()).await;
    assert_eq!(status, 200);
    keep_answer("query-known-child", &z32);
    assert!(segment(&z32, "MSH")[0].contains("Z32^CDCPHINVS"), "{z32}");
    assert!(
        segment(&z32, "QAK")[0].starts_with("QAK|E2E-TAG-1|OK|"),
        "{z32}"
    );
    assert_eq!(segment(&z32, "RXA").len(), 5, "{z32}");
    assert!(
        segment(&z32, "RXA")
            .iter()
            .any(|r| r.contains("|526434|") && r.contains("PMC^Sanofi Pasteur^MVX")),
        "{z32}"
    );
    // The same query over SOAP is answered the same way.
    let (status, soap) = post_soap(
        url,
        DEMO_USER,
        DEMO_PASSWORD,
        "NISTEHRFAC",
        &z34.replace("E2E-Q-1", "E2E-Q-2"),
    )
    .await;
    assert_eq!(status, 200, "{soap}");
    assert!(
        soap.contains("Z32^CDCPHINVS") && soap.contains("526434"),
        "{soap}"
    );

    // A Z44 for the same boy: RSP Z42, his doses each with its CDSi
    // evaluation, then the forecast, as of today. Known gap: three of his
    // five doses (Pentacel, RotaTeq, Prevnar 13) are coded by NDC only, and
    // CDSi reads CVX codes; with no NDC-to-CVX crosswalk in this project
    // they are left out of the evaluated history (and the forecast does not
    // count them). His two Hep B doses (CVX 45) are evaluated.
    let z44 = z34
        .replace("|Z34^CDCPHINVS|", "|Z44^CDCPHINVS|")
        .replace(
            "Z34^Request Immunization History^CDCPHINVS",
            "Z44^Request Evaluated History and Forecast^CDCPHINVS",
        )
        .replace("E2E-Q-1", "E2E-Q-3")
        .replace("E2E-TAG-1", "E2E-TAG-3");
    let (status, z42) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, z44.as_bytes().to_vec()).await;
    assert_eq!(status, 200);
    keep_answer("query-known-child-z44", &z42);
    assert!(segment(&z42, "MSH")[0].contains("|Z42^CDCPHINVS|"), "{z42}");
    assert!(
        segment(&z42, "MSA")[0].starts_with("MSA|AA|E2E-Q-3"),
        "{z42}"
    );
    assert!(
        segment(&z42, "QAK")[0].starts_with("QAK|E2E-TAG-3|OK|Z44^"),
        "{z42}"
    );
    assert_eq!(segment(&z42, "PID").len(), 1, "{z42}");
    let rxa = segment(&z42, "RXA");
    assert_eq!(rxa.len(), 2 + 1, "two CVX doses and the forecast: {z42}");
    assert!(rxa[..2].iter().all(|r| r.contains("|45^Hep B")), "{z42}");
    assert!(!z42.contains("|526434|"), "the NDC-only Pentacel: {z42}");
    for dose in &rxa[..2] {
        let rows = obx_after(&z42, dose);
        assert!(obx_value(&rows, "59781-5") == Some("Y"), "{dose}: {z42}");
    }
    assert!(
        rxa[2].contains("|998^no vaccine administered^CVX|999|"),
        "{z42}"
    );
    let forecast = obx_after(&z42, rxa[2]);
    assert!(
        obx_value(&forecast, "48767-8").is_some_and(|v| v.ends_with("supporting data 4.64")),
        "{z42}"
    );
    assert!(obx_value(&forecast, "30980-7").is_some(), "{z42}");
    // The same query over SOAP: the same kind of answer.
    let (status, soap) = post_soap(
        url,
        DEMO_USER,
        DEMO_PASSWORD,
        "NISTEHRFAC",
        &z44.replace("E2E-Q-3", "E2E-Q-4"),
    )
    .await;
    assert_eq!(status, 200, "{soap}");
    let soap_z42 = soap_return(&soap);
    keep_answer("query-known-child-z44-soap", &soap_z42);
    assert!(
        segment(&soap_z42, "MSH")[0].contains("|Z42^CDCPHINVS|"),
        "{soap}"
    );
    assert_eq!(segment(&soap_z42, "RXA").len(), 3, "{soap}");

    // The IG's example queries: a child this IIS has never seen.
    for name in ["qbp-005.hl7", "qbp-006.hl7"] {
        let q = with_msh4(
            &std::fs::read(corpus_dir().join(name)).unwrap(),
            "NISTEHRFAC",
        );
        let (status, rsp) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, q).await;
        assert_eq!(status, 200);
        keep_answer(name, &rsp);
        assert!(
            segment(&rsp, "MSH")[0].contains("Z33^CDCPHINVS"),
            "{name}: {rsp}"
        );
        assert!(segment(&rsp, "QAK")[0].contains("|NF|"), "{name}: {rsp}");
        assert!(
            segment(&rsp, "MSA")[0].starts_with("MSA|AA|"),
            "{name}: {rsp}"
        );
    }
    // The corpus Z44 queries (NIST's ONC 2015 test plan). SOURCES.md expects
    // Z42 for qbp-001/002, Z33 NF for qbp-003 and Z33 TM for qbp-004, but
    // the NIST test steps that report those children (and the several James
    // Smiths qbp-004 finds too many of) are not in the corpus: no corpus VXU
    // names Fairchild, Stanley, Bee or Smith. This IIS has never heard of
    // them, so all four are answered Z33 NF; qbp-003's expectation is met.
    for name in ["qbp-001.hl7", "qbp-002.hl7", "qbp-003.hl7", "qbp-004.hl7"] {
        let q = std::fs::read(corpus_dir().join(name)).unwrap();
        let (status, rsp) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, q).await;
        assert_eq!(status, 200);
        keep_answer(&format!("{}-unknown", name.trim_end_matches(".hl7")), &rsp);
        assert!(
            segment(&rsp, "MSH")[0].contains("Z33^CDCPHINVS"),
            "{name}: {rsp}"
        );
        assert!(
            segment(&rsp, "MSA")[0].starts_with("MSA|AA|"),
            "{name}: {rsp}"
        );
        assert!(
            segment(&rsp, "QAK")[0].contains("|NF|Z44^"),
            "{name}: {rsp}"
        );
    }
    // Once qbp-001's child is reported (with the history of NIST's expected
    // answer rsp-001), the corpus query itself gets its expected Z42, and
    // the dose validity rsp-001 gives: every dose valid but the Hib at four
    // weeks.
    let (_, ack) = post_hl7(
        url,
        DEMO_USER,
        DEMO_PASSWORD,
        FAIRCHILD_VXU.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(msa1(&ack), "AA", "{ack}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("the Fairchild VXU matched");
    for (transport, rsp) in [
        (
            "REST",
            post_hl7(
                url,
                DEMO_USER,
                DEMO_PASSWORD,
                std::fs::read(corpus_dir().join("qbp-001.hl7")).unwrap(),
            )
            .await
            .1,
        ),
        (
            "SOAP",
            soap_return(
                &post_soap(
                    url,
                    DEMO_USER,
                    DEMO_PASSWORD,
                    "NISTEHRFAC",
                    &String::from_utf8(std::fs::read(corpus_dir().join("qbp-001.hl7")).unwrap())
                        .unwrap(),
                )
                .await
                .1,
            ),
        ),
    ] {
        keep_answer(&format!("qbp-001-{transport}"), &rsp);
        assert!(
            segment(&rsp, "MSH")[0].contains("|Z42^CDCPHINVS|"),
            "{transport}: {rsp}"
        );
        assert!(
            segment(&rsp, "MSA")[0].starts_with("MSA|AA|NIST-IZ-QR-1.1_Query_Q11_Z44"),
            "{transport}: {rsp}"
        );
        assert!(
            segment(&rsp, "QAK")[0].starts_with("QAK|IZ-1.1-2015|OK|Z44^"),
            "{transport}: {rsp}"
        );
        assert!(
            segment(&rsp, "PID")[0].contains("Fairchild^Cameron^A"),
            "{transport}: {rsp}"
        );
        let validity: Vec<(String, Option<&str>)> = segment(&rsp, "RXA")
            .iter()
            .filter(|r| !r.contains("|998^"))
            .map(|r| {
                let cvx = r.split('|').nth(5).unwrap().split('^').next().unwrap();
                (cvx.to_owned(), obx_value(&obx_after(&rsp, r), "59781-5"))
            })
            .collect();
        assert_eq!(
            validity,
            [
                ("48".to_owned(), Some("N")),
                ("45".to_owned(), Some("Y")),
                ("110".to_owned(), Some("Y")),
                ("08".to_owned(), Some("Y")),
                ("03".to_owned(), Some("Y")),
            ],
            "{transport}: {rsp}"
        );
        let hib = segment(&rsp, "RXA")[0];
        assert_eq!(
            obx_value(&obx_after(&rsp, hib), "30982-3"),
            Some("Age: Too Young"),
            "{transport}: {rsp}"
        );
    }

    // The IG's malformed query (no QPD-2, no RCP): Z33 AE naming QPD-2.
    let q = std::fs::read(corpus_dir().join("qbp-007.hl7")).unwrap();
    let (status, rsp) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, q).await;
    assert_eq!(status, 200);
    keep_answer("qbp-007", &rsp);
    assert!(segment(&rsp, "MSH")[0].contains("Z33^CDCPHINVS"), "{rsp}");
    assert!(segment(&rsp, "MSA")[0].starts_with("MSA|AE|"), "{rsp}");
    assert!(
        segment(&rsp, "ERR")[0].starts_with("ERR||QPD^1^2|101^"),
        "{rsp}"
    );
}

async fn get_fhir(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = client().get(url).header("accept", "application/fhir+json");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    if status != 404 || !body.is_empty() {
        assert_eq!(ctype, "application/fhir+json", "{url}: {body}");
    }
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Keeps every resource the test reads, for the independent FHIR validator
/// (`scripts/test` checks them with the `fhir.resources` models).
fn keep_sample(name: &str, resource: &serde_json::Value) {
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            Path::new(&dir).join(format!("{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

/// Runs `iisbulk` with these arguments; returns its standard output.
fn iisbulk(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iisbulk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new ES384 key for an Authorized User's client, registered with the
/// `iisbulk` commands a jurisdiction would use; returns (client_id, key file).
fn register_client(data: &Path, au: &str) -> (String, PathBuf) {
    let key = data.join(format!("{au}.p8"));
    std::fs::write(
        &key,
        registry::smart::jose::SigningKey::generate_es384().unwrap(),
    )
    .unwrap();
    let jwks = data.join(format!("{au}.jwks.json"));
    std::fs::write(&jwks, iisbulk(&["jwks", "--key", key.to_str().unwrap()])).unwrap();
    let data = data.to_str().unwrap();
    let said = iisbulk(&[
        "client",
        "add",
        "--data-dir",
        data,
        "--au",
        au,
        "--jwks",
        jwks.to_str().unwrap(),
    ]);
    let id = said
        .lines()
        .find_map(|l| l.strip_prefix("client_id "))
        .unwrap()
        .to_owned();
    (id, key)
}

fn access_token(url: &str, client: &(String, PathBuf)) -> String {
    let body = iisbulk(&[
        "token",
        "--url",
        url,
        "--client-id",
        &client.0,
        "--key",
        client.1.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn reported_children_join_the_senders_group_readable_as_fhir_by_it_alone() {
    let data = tempfile::tempdir().unwrap();
    // The first start creates the demo user; without a token FHIR says 401.
    {
        let plain = Server::start(data.path(), &[]);
        let (status, outcome) = get_fhir(&format!("{}/fhir/Group", plain.url), None).await;
        assert_eq!(status, 401);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let said = iisbulk(&[
        "au",
        "add",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--id",
        "other-clinic",
        "--kind",
        "clinic",
        "--name",
        "Other Clinic",
        "--facility",
        "OTHERFAC",
        "--username",
        "other",
        "--password",
        "other-password-1",
    ]);
    let other_group = said
        .lines()
        .find_map(|l| l.strip_prefix("Group "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let demo_client = register_client(data.path(), "demo-clinic");
    let other_client = register_client(data.path(), "other-clinic");

    let mut server = Server::start(data.path(), &[]);
    let url = server.url.clone();
    let demo_token = access_token(&url, &demo_client);
    let other_token = access_token(&url, &other_client);
    let demo = Some(demo_token.as_str());
    let other = Some(other_token.as_str());
    let mut sent = 0;
    for (name, body) in corpus("vxu-00") {
        let (status, answer) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, body).await;
        assert_eq!(status, 200, "{name}");
        if answer.contains("MSA|AA") || answer.contains("MSA|AE") {
            sent += 1;
        }
    }
    for _ in 0..sent {
        server
            .matched
            .recv_timeout(Duration::from_secs(60))
            .expect("message matched");
    }

    // Discovery needs no token.
    let (status, capability) = get_fhir(&format!("{url}/fhir/metadata"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        capability["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"],
        format!("{url}/auth/token")
    );
    keep_sample("capability-statement", &capability);
    assert_eq!(
        capability["instantiates"][0],
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    );
    assert_eq!(
        capability["rest"][0]["resource"][0]["operation"][0]["name"],
        "export"
    );

    // The demo clinic finds its Group by identifier (its Authorized User id).
    let (status, bundle) =
        get_fhir(&format!("{url}/fhir/Group?identifier=demo-clinic"), demo).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["total"], 1, "{bundle}");
    let group_id = bundle["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    keep_sample("bundle-group-search", &bundle);

    // Membership follows matching asynchronously: wait until it settles.
    let mut group = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, g) = get_fhir(&format!("{url}/fhir/Group/{group_id}"), demo).await;
        let settled = g["quantity"].as_u64().unwrap_or(0) > 0 && g == group;
        group = g;
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(group["resourceType"], "Group");
    assert_eq!(
        (group["type"].as_str(), group["actual"].as_bool()),
        (Some("person"), Some(true))
    );
    assert_eq!(
        group["managingEntity"]["reference"],
        "Organization/demo-clinic"
    );
    let members = group["member"].as_array().unwrap();
    assert_eq!(members.len() as u64, group["quantity"].as_u64().unwrap());
    keep_sample("group", &group);

    let mut doses = 0;
    for (n, m) in members.iter().enumerate() {
        let reference = m["entity"]["reference"].as_str().unwrap();
        assert!(m["period"]["start"].as_str().unwrap().ends_with('Z'));
        let (status, patient) = get_fhir(&format!("{url}/fhir/{reference}"), demo).await;
        assert_eq!(status, 200, "{patient}");
        assert_eq!(patient["resourceType"], "Patient");
        keep_sample(&format!("patient-{n}"), &patient);
        let (status, imms) = get_fhir(
            &format!("{url}/fhir/Immunization?patient={reference}"),
            demo,
        )
        .await;
        assert_eq!(status, 200, "{imms}");
        for (k, e) in imms["entry"].as_array().into_iter().flatten().enumerate() {
            let imm = &e["resource"];
            assert_eq!(imm["patient"]["reference"], reference);
            keep_sample(&format!("immunization-{n}-{k}"), imm);
            doses += 1;
        }

        // Another Authorized User sees none of it.
        let (status, outcome) = get_fhir(&format!("{url}/fhir/{reference}"), other).await;
        assert_eq!(status, 404);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        let (_, none) = get_fhir(
            &format!("{url}/fhir/Immunization?patient={reference}"),
            other,
        )
        .await;
        assert_eq!(none["total"], 0);
    }
    assert!(doses > 0, "no immunizations read");
    let (status, _) = get_fhir(&format!("{url}/fhir/Group/{group_id}"), other).await;
    assert_eq!(status, 404);
    let (_, theirs) = get_fhir(&format!("{url}/fhir/Group/{other_group}"), other).await;
    assert_eq!(
        (theirs["quantity"].as_u64(), theirs["member"].is_null()),
        (Some(0), true)
    );
    let (_, empty) = get_fhir(&format!("{url}/fhir/Group?identifier=demo-clinic"), other).await;
    assert_eq!(empty["total"], 0);

    // Summary, missing credentials, a missing parameter: FHIR answers.
    let (_, summary) = get_fhir(&format!("{url}/fhir/Group/{group_id}?_summary=true"), demo).await;
    assert!(summary["member"].is_null());
    assert_eq!(summary["meta"]["tag"][0]["code"], "SUBSETTED");
    let (status, outcome) = get_fhir(&format!("{url}/fhir/Group/{group_id}"), None).await;
    assert_eq!(status, 401);
    keep_sample("operation-outcome-401", &outcome);
    let (status, _) = get_fhir(&format!("{url}/fhir/Group/{group_id}"), Some("not-a-token")).await;
    assert_eq!(status, 401);
    let (status, outcome) = get_fhir(&format!("{url}/fhir/Immunization"), demo).await;
    assert_eq!(status, 400);
    assert!(outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("patient"));

    // Bulk export of the Group: kick-off, polls, manifest, downloads, cancel.
    let kick = |token: &str, extra: &[(&str, &str)]| {
        let mut r = client()
            .get(format!("{url}/fhir/Group/{group_id}/$export"))
            .bearer_auth(token)
            .header("accept", "application/fhir+json");
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        r
    };
    let refused = kick(&demo_token, &[]).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 400, "no Prefer: respond-async");
    let other_kick = client()
        .get(format!("{url}/fhir/Group/{group_id}/$export"))
        .bearer_auth(&other_token)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(other_kick.status().as_u16(), 404);
    let accepted = kick(&demo_token, &[("prefer", "respond-async")])
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    let status_url = accepted.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        status_url.starts_with(&format!("{url}/fhir/bulkstatus/")),
        "{status_url}"
    );
    let first = client()
        .get(&status_url)
        .bearer_auth(&demo_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.status().as_u16(),
        202,
        "the first poll is always in progress"
    );
    assert!(first.headers().contains_key("x-progress"));
    let retry_after = |r: &reqwest::Response| -> u64 {
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(retry_after(&first) >= 1);
    let too_soon = client()
        .get(&status_url)
        .bearer_auth(&demo_token)
        .send()
        .await
        .unwrap();
    assert_eq!(too_soon.status().as_u16(), 429, "polled again at once");
    assert!(retry_after(&too_soon) >= 1);
    let (status, _) = get_fhir(&status_url, Some(&other_token)).await;
    assert_eq!(status, 404, "another user's job");
    let mut manifest = serde_json::Value::Null;
    let mut wait = retry_after(&first);
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let r = client()
            .get(&status_url)
            .bearer_auth(&demo_token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            assert!(r.headers().contains_key("expires"));
            manifest = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            break;
        }
        assert_eq!(r.status().as_u16(), 202);
        wait = retry_after(&r);
    }
    assert_eq!(manifest["requiresAccessToken"], true, "{manifest}");
    assert_eq!(manifest["error"], serde_json::json!([]));
    assert!(manifest["transactionTime"].as_str().unwrap().ends_with('Z'));
    let mut exported = std::collections::BTreeMap::new();
    for out in manifest["output"].as_array().unwrap() {
        let file_url = out["url"].as_str().unwrap();
        let (status, _) = get_fhir(file_url, Some(&other_token)).await;
        assert_eq!(status, 404, "another user's file");
        let r = client()
            .get(file_url)
            .bearer_auth(&demo_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "application/fhir+ndjson");
        let text = r.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, out["count"].as_u64().unwrap());
        for (n, line) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            keep_sample(&format!("ndjson-{}-{n}", out["type"].as_str().unwrap()), &v);
        }
        *exported
            .entry(out["type"].as_str().unwrap().to_owned())
            .or_insert(0) += lines.len();
    }
    assert_eq!(exported["Patient"], members.len(), "{manifest}");
    assert_eq!(exported["Immunization"], doses);
    assert_eq!(exported["Group"], 1);
    let file_url = manifest["output"][0]["url"].as_str().unwrap().to_owned();
    let cancelled = client()
        .delete(&status_url)
        .bearer_auth(&demo_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status().as_u16(), 202);
    let (status, outcome) = get_fhir(&status_url, demo).await;
    assert_eq!(
        (status, outcome["resourceType"].as_str()),
        (404, Some("OperationOutcome"))
    );
    let (status, _) = get_fhir(&file_url, demo).await;
    assert_eq!(status, 404, "files of a deleted export");

    // The same through `iisbulk export`, the client users and tests share.
    let out = data.path().join("export-out");
    let said = iisbulk(&[
        "export",
        "--url",
        &url,
        "--client-id",
        &demo_client.0,
        "--key",
        demo_client.1.to_str().unwrap(),
        "--group",
        &group_id,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(said.contains("transactionTime"), "{said}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let patients_file = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("output-Patient")
        })
        .unwrap();
    let lines = std::fs::read_to_string(patients_file)
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, members.len(), "{saved}");

    // `--type-filter`: no dose is from before 1900, so Patients only.
    let filtered = data.path().join("export-filtered");
    let said = iisbulk(&[
        "export",
        "--url",
        &url,
        "--client-id",
        &demo_client.0,
        "--key",
        demo_client.1.to_str().unwrap(),
        "--group",
        &group_id,
        "--out",
        filtered.to_str().unwrap(),
        "--type",
        "Patient,Immunization",
        "--type-filter",
        "Immunization?date=lt1900-01-01",
    ]);
    assert!(said.contains("transactionTime"), "{said}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(filtered.join("manifest.json")).unwrap()).unwrap();
    let outputs = saved["output"].as_array().unwrap();
    assert!(
        !outputs.is_empty() && outputs.iter().all(|f| f["type"] == "Patient"),
        "{saved}"
    );
    server.kill();

    // The CLI tells why each member is there.
    let list = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["group", "members", "--data-dir"])
        .arg(data.path())
        .arg(&group_id)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert_eq!(text.lines().count(), members.len(), "{text}");
    assert!(text.contains("added: vxu"), "{text}");
}

#[test]
fn a_bad_jurisdiction_policy_stops_start_up_naming_the_option() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.toml");
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policy/jurisdiction.toml"),
    )
    .unwrap();
    std::fs::write(
        &policy,
        shipped.replace("association = \"multiple\"", "association = \"several\""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--policy") && err.contains("several") && err.contains("association"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[test]
fn a_cdsi_data_folder_that_does_not_load_stops_start_up_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let empty = data.path().join("Version 9.99 - 508").join("XML");
    std::fs::create_dir_all(&empty).unwrap();
    for folder in [empty.clone(), data.path().join("missing")] {
        let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data.path().join("iis"))
            .arg("--cdsi-data")
            .arg(&folder)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("--cdsi-data") && err.contains(&folder.display().to_string()),
            "{err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
}

/// A jurisdiction pins its CDSi release with --cdsi-data; every Z42 names it.
#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_cdsi_release_is_used_and_named_in_z42() {
    let tmp = tempfile::tempdir().unwrap();
    // CDC's own layout: "Version <release> - 508/XML".
    let xml = tmp.path().join("Version 4.64-pinned - 508").join("XML");
    std::fs::create_dir_all(&xml).unwrap();
    let builtin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("shared/cdsi/data/4.64");
    for entry in std::fs::read_dir(builtin).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, xml.join(path.file_name().unwrap())).unwrap();
    }
    let data = tmp.path().join("iis");
    let server = Server::start(&data, &["--cdsi-data", xml.to_str().unwrap()]);
    let url = &server.url;
    let (_, ack) = post_hl7(
        url,
        DEMO_USER,
        DEMO_PASSWORD,
        FAIRCHILD_VXU.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(msa1(&ack), "AA", "{ack}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("matched");
    let q = std::fs::read(corpus_dir().join("qbp-001.hl7")).unwrap();
    let (status, rsp) = post_hl7(url, DEMO_USER, DEMO_PASSWORD, q).await;
    assert_eq!(status, 200);
    keep_answer("qbp-001-pinned-cdsi", &rsp);
    assert!(segment(&rsp, "MSH")[0].contains("|Z42^CDCPHINVS|"), "{rsp}");
    let forecast = segment(&rsp, "RXA")
        .into_iter()
        .find(|r| r.contains("|998^"))
        .unwrap();
    assert_eq!(
        obx_value(&obx_after(&rsp, forecast), "48767-8"),
        Some("Evaluated and forecast by CDC CDSi, supporting data 4.64-pinned"),
        "{rsp}"
    );
}

/// POSTs a `$immds-forecast` Parameters body with a token.
async fn post_forecast(
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("{url}/fhir/$immds-forecast"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

/// `iisbulk serve --cdsi-data` pins the release of the FHIR side too: a
/// Group member is forecast over HTTP from its consolidated history after
/// its VXUs (each vaccination event evaluated once, however many reports
/// it has), naming the pinned release; a non-member is refused; and an
/// export asked for ImmunizationRecommendation lists its file.
#[tokio::test(flavor = "multi_thread")]
async fn immds_forecast_and_exported_forecasts_use_the_pinned_cdsi_release() {
    let tmp = tempfile::tempdir().unwrap();
    let xml = tmp.path().join("Version 4.64-pinned - 508").join("XML");
    std::fs::create_dir_all(&xml).unwrap();
    let builtin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("shared/cdsi/data/4.64");
    for entry in std::fs::read_dir(builtin).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, xml.join(path.file_name().unwrap())).unwrap();
    }
    let data = tmp.path().join("iis");
    // The first start creates the demo user; its client is added offline.
    drop(Server::start(&data, &[]));
    let demo_client = register_client(&data, "demo-clinic");
    let server = Server::start(&data, &["--cdsi-data", xml.to_str().unwrap()]);
    let url = server.url.clone();
    // The Fairchild child, then the birthday HepB again in a second report
    // (another order number): still one vaccination event.
    let again = FAIRCHILD_VXU
        .replace("E2E-FAIRCHILD-1", "E2E-FAIRCHILD-2")
        .split("ORC|")
        .next()
        .unwrap()
        .to_owned()
        + "ORC|RE||F-4B^NISTEHRFAC\rRXA|0|1|20100411||08^Hep B, adolescent or pediatric^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    for msg in [FAIRCHILD_VXU.to_owned(), again] {
        let (_, ack) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, msg.into_bytes()).await;
        assert_eq!(msa1(&ack), "AA", "{ack}");
        server
            .matched
            .recv_timeout(Duration::from_secs(60))
            .expect("matched");
    }
    let token = access_token(&url, &demo_client);
    // Membership follows matching asynchronously.
    let mut member = None;
    for _ in 0..100 {
        let (_, bundle) = get_fhir(
            &format!("{url}/fhir/Group?identifier=demo-clinic"),
            Some(&token),
        )
        .await;
        member = bundle["entry"][0]["resource"]["member"][0]["entity"]["reference"]
            .as_str()
            .map(str::to_owned);
        if member.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let member = member.expect("the child joined the demo Group");
    let group_id = {
        let (_, b) = get_fhir(
            &format!("{url}/fhir/Group?identifier=demo-clinic"),
            Some(&token),
        )
        .await;
        b["entry"][0]["resource"]["id"].as_str().unwrap().to_owned()
    };
    let (_, imms) = get_fhir(
        &format!("{url}/fhir/Immunization?patient={member}"),
        Some(&token),
    )
    .await;
    let events: std::collections::BTreeSet<String> = imms["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("Immunization/{}", e["resource"]["id"].as_str().unwrap()))
        .collect();
    assert_eq!(events.len(), 5, "{imms}");

    let (status, answer) = post_forecast(
        &url,
        &token,
        &serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": member}}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    keep_sample("immds-e2e-parameters", &answer);
    let mut seen = std::collections::BTreeMap::new();
    let mut recommendation = serde_json::Value::Null;
    for p in answer["parameter"].as_array().unwrap() {
        let r = &p["resource"];
        let described = r["description"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                r["recommendation"][0]["description"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap();
        assert!(
            described.ends_with("supporting data 4.64-pinned"),
            "{described}"
        );
        if p["name"] == "evaluation" {
            let event = r["immunizationEvent"]["reference"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(events.contains(&event), "{event}");
            *seen.entry((event, described)).or_insert(0) += 1;
        } else {
            recommendation = r.clone();
        }
    }
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let evaluated: std::collections::BTreeSet<&String> = seen.keys().map(|(e, _)| e).collect();
    assert_eq!(evaluated.len(), events.len());
    assert_eq!(recommendation["patient"]["reference"], member);
    assert_eq!(
        recommendation["date"].as_str().unwrap(),
        &iz::Clock::now().today().iso()[..]
    );

    // Anyone outside the Group: 403; a malformed body: 400.
    let (status, outcome) = post_forecast(
        &url,
        &token,
        &serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": "Patient/someone-else"}}]}),
    )
    .await;
    assert_eq!(
        (status, outcome["resourceType"].as_str()),
        (403, Some("OperationOutcome"))
    );
    let (status, outcome) =
        post_forecast(&url, &token, &serde_json::json!({"resourceType": "Bundle"})).await;
    assert_eq!(
        (status, outcome["resourceType"].as_str()),
        (400, Some("OperationOutcome"))
    );

    // The export with forecasts, through the `iisbulk export` client.
    let out = tmp.path().join("export-out");
    iisbulk(&[
        "export",
        "--url",
        &url,
        "--client-id",
        &demo_client.0,
        "--key",
        demo_client.1.to_str().unwrap(),
        "--group",
        &group_id,
        "--type",
        "Patient,Immunization,ImmunizationRecommendation",
        "--out",
        out.to_str().unwrap(),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let types: Vec<&str> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Patient", "Immunization", "ImmunizationRecommendation"],
        "{manifest}"
    );
    let file = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("output-ImmunizationRecommendation")
        })
        .unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    keep_sample("immds-e2e-exported-recommendation", &lines[0]);
    assert_eq!(lines[0]["patient"]["reference"], member);
    assert!(lines[0]["recommendation"][0]["description"]
        .as_str()
        .unwrap()
        .ends_with("supporting data 4.64-pinned"));
}

#[test]
fn the_demo_onboards_sends_and_exports_through_the_real_api() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args([
            "demo",
            "--exit",
            "--generated",
            "40",
            "--bind",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--corpus")
        .arg(corpus_dir())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("and 40 made-up ones over HTTP"), "{said}");
    // The console's URL and reviewer login, and the newborns' pairs waiting
    // in its queue (counted by the demo through the console API).
    let console_line = said
        .lines()
        .find(|l| l.starts_with("7. console at http://"))
        .unwrap_or_else(|| panic!("no console line: {said}"));
    assert!(
        console_line.contains("reviewer login demo-reviewer / demo-reviewer-password"),
        "{console_line}"
    );
    let waiting: usize = console_line
        .rsplit_once("): ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{console_line}"));
    assert!(
        waiting >= 3,
        "the three newborn pairs wait for review: {console_line}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("export/manifest.json")).unwrap()).unwrap();
    let count = |t: &str| -> u64 {
        manifest["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["type"] == t)
            .map(|f| f["count"].as_u64().unwrap())
            .sum()
    };
    // The corpus children and the made-up ones (a few may be matched together).
    assert!(count("Patient") >= 40, "{manifest}");
    assert!(count("Immunization") >= count("Patient"), "{manifest}");
    assert_eq!(count("Group"), 1);
    assert_eq!(manifest["error"], serde_json::json!([]));
    // A second demo never reuses a data directory.
    let again = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["demo", "--exit", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

fn parked(data: &Path) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(["feed", "parked", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code(), lines)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_the_matcher_cannot_apply_is_parked_and_the_feed_moves_on() {
    let data = tempfile::tempdir().unwrap();
    // An accepted message whose stored form cannot be read (a bug or a disk
    // did it), announced on the feed before anything else.
    {
        use store::{Condition, Item, ItemStore, Key};
        let store = store::embedded::EmbeddedStore::open(data.path().join("iis.redb")).unwrap();
        store
            .put(
                Item::new(Key::new("IN#broken-1", "HEAD"), b"{not json".to_vec()),
                Condition::None,
            )
            .await
            .unwrap();
    }
    let mut server = Server::start(data.path(), &["--park-after", "2"]);
    let vxu = std::fs::read(corpus_dir().join("vxu-001.hl7")).unwrap();
    let (status, answer) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, vxu).await;
    assert_eq!((status, msa1(&answer).as_str()), (200, "AA"), "{answer}");
    // The message behind the broken one is matched: the feed moved on.
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("the next message matched");
    // Read while the server holds the store: through the store it lends.
    let (code, lines) = parked(data.path());
    assert_eq!(code, Some(3), "read while serve runs: {lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "broken-1");
    server.kill();

    let (code, lines) = parked(data.path());
    assert_eq!(code, Some(3), "parked changes make the exit status 3");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["consumer"], "matcher");
    assert_eq!(lines[0]["event"], "broken-1");
    assert_eq!(lines[0]["attempts"], 2);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("accepted head"),
        "{lines:?}"
    );

    // A restart tries it again first; still unreadable, it stays parked with
    // its attempts counted, and new messages still flow.
    let server = Server::start(data.path(), &["--park-after", "2"]);
    let vxu = std::fs::read(corpus_dir().join("vxu-002.hl7")).unwrap();
    let (status, answer) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, vxu).await;
    assert_eq!((status, msa1(&answer).as_str()), (200, "AA"), "{answer}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("matched after the replay");
    drop(server);
    let (code, lines) = parked(data.path());
    assert_eq!(code, Some(3));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["attempts"], 2 + 3);
    assert!(lines[0]["last_attempt_ms"].as_i64() > lines[0]["parked_at_ms"].as_i64());

    // Once repaired (here: the broken head removed, so the matcher finds
    // nothing to do), a restart applies it and it is gone.
    {
        use store::{Condition, ItemStore, Key};
        let store = store::embedded::EmbeddedStore::open(data.path().join("iis.redb")).unwrap();
        store
            .delete(&Key::new("IN#broken-1", "HEAD"), Condition::None)
            .await
            .unwrap();
    }
    let server = Server::start(data.path(), &[]);
    let vxu = std::fs::read(corpus_dir().join("vxu-003.hl7")).unwrap();
    let (status, _) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, vxu).await;
    assert_eq!(status, 200);
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("matched after the replay");
    drop(server);
    assert_eq!(parked(data.path()), (Some(0), vec![]));
}

/// A twin as the demo clinic's EHR reports her: her own chart number, the
/// shared birth date, mother, address and phone, PID-24 `Y` and her birth
/// order, and one dose of her own.
fn twin_vxu(
    control_id: &str,
    mrn: &str,
    given: &str,
    order: &str,
    cvx: &str,
    lot: &str,
) -> Vec<u8> {
    format!(
        "MSH|^~\\&|EHR|DEMOGEN|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMOGEN|IISFAC\r\
PID|1||{mrn}^^^DEMOGEN^MR||Okonkwo^{given}^^^^^L|Eze^^^^^^M|20240611|F|||31 Larch Ct^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550133|||||||||||Y|{order}\r\
NK1|1|Okonkwo^Ifeoma^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||{control_id}-1^DEMOGEN\r\
RXA|0|1|20240811||{cvx}^vaccine^CVX|999|||01^Historical^NIP001||||||{lot}|||||CP|A\r"
    )
    .into_bytes()
}

/// Issue "Matching that decides": twins Amara and Bela, reported by one
/// clinic with their own charts, the same birth date, mother and address,
/// PID-24 Y and PID-25 1 and 2, are two active children, both in the
/// clinic's Group; a Z34 with Amara's chart number answers Z32 with her
/// doses only.
#[tokio::test(flavor = "multi_thread")]
async fn twins_from_one_clinic_are_two_children_in_its_group_and_each_is_found_by_chart() {
    let data = tempfile::tempdir().unwrap();
    {
        let _first = Server::start(data.path(), &[]);
    }
    let demo_client = register_client(data.path(), "demo-clinic");
    let server = Server::start(data.path(), &[]);
    let url = server.url.clone();
    for body in [
        twin_vxu("TW-A", "TW-1", "Amara", "1", "08", "AMARA-LOT"),
        twin_vxu("TW-B", "TW-2", "Bela", "2", "20", "BELA-LOT"),
    ] {
        let (status, answer) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, body).await;
        assert_eq!(status, 200);
        assert!(answer.contains("MSA|AA"), "{answer}");
        server
            .matched
            .recv_timeout(Duration::from_secs(60))
            .expect("message matched");
    }
    let token = access_token(&url, &demo_client);
    let (_, bundle) = get_fhir(
        &format!("{url}/fhir/Group?identifier=demo-clinic"),
        Some(&token),
    )
    .await;
    let group_id = bundle["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Both children join the Group (membership follows matching).
    let mut group = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, g) = get_fhir(&format!("{url}/fhir/Group/{group_id}"), Some(&token)).await;
        group = g;
        if group["quantity"].as_u64() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(group["quantity"], 2, "{group}");
    let mut names = Vec::new();
    for m in group["member"].as_array().unwrap() {
        assert!(m["inactive"].as_bool() != Some(true), "{m}");
        let reference = m["entity"]["reference"].as_str().unwrap();
        let (status, patient) = get_fhir(&format!("{url}/fhir/{reference}"), Some(&token)).await;
        assert_eq!(status, 200, "{patient}");
        names.push(patient["name"][0]["given"][0].as_str().unwrap().to_owned());
    }
    names.sort();
    assert_eq!(names, ["Amara", "Bela"]);

    // The clinic asks about Amara by her chart number, name and birth date.
    let z34 = "MSH|^~\\&|EHR|DEMOGEN|IIS|IISFAC|20250601120000-0500||QBP^Q11^QBP_Q11|TW-Q1|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|DEMOGEN|IISFAC\r\
QPD|Z34^Request Immunization History^CDCPHINVS|Q-TW-Q1|TW-1^^^DEMOGEN^MR|Okonkwo^Amara^^^^^L|Eze^^^^^^M|20240611|F|31 Larch Ct^^Lansing^MI^48910^USA^P\r\
RCP|I|5^RD&records&HL70126\r";
    let (status, rsp) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, z34.as_bytes().to_vec()).await;
    assert_eq!(status, 200);
    keep_answer("twin-z34-by-chart", &rsp);
    assert!(rsp.contains("Z32^CDCPHINVS"), "{rsp}");
    assert_eq!(segment(&rsp, "PID").len(), 1, "{rsp}");
    assert!(rsp.contains("^Amara^") && !rsp.contains("^Bela^"), "{rsp}");
    let rxa = segment(&rsp, "RXA");
    assert_eq!(rxa.len(), 1, "{rsp}");
    assert!(
        rxa[0].contains("AMARA-LOT") && !rsp.contains("BELA-LOT"),
        "{rsp}"
    );

    // A Z44 with Bela's chart number: her evaluated dose and forecast only.
    let z44 = z34
        .replace("|Z34^CDCPHINVS|", "|Z44^CDCPHINVS|")
        .replace(
            "Z34^Request Immunization History^CDCPHINVS",
            "Z44^Request Evaluated History and Forecast^CDCPHINVS",
        )
        .replace("TW-Q1", "TW-Q2")
        .replace(
            "|TW-1^^^DEMOGEN^MR|Okonkwo^Amara^",
            "|TW-2^^^DEMOGEN^MR|Okonkwo^^",
        );
    let (status, rsp) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, z44.into_bytes()).await;
    assert_eq!(status, 200);
    keep_answer("twin-z44-by-chart", &rsp);
    assert!(rsp.contains("|Z42^CDCPHINVS|"), "{rsp}");
    assert!(rsp.contains("^Bela^") && !rsp.contains("^Amara^"), "{rsp}");
    let rxa = segment(&rsp, "RXA");
    assert_eq!(rxa.len(), 2, "her dose and the forecast: {rsp}");
    assert!(
        rxa[0].contains("BELA-LOT") && !rsp.contains("AMARA-LOT"),
        "{rsp}"
    );
    assert!(rxa[1].contains("|998^"), "{rsp}");
}

/// One report of a dose for the vaccination-events test: `orc` is the
/// sender's ORC-3 (empty for none), `kind` "new" (RXA-9 00) or "historical",
/// `completion` RXA-20, `action` RXA-21.
struct Report<'a> {
    facility: &'a str,
    control_id: &'a str,
    mrn: &'a str,
    orc: &'a str,
    cvx: &'a str,
    date: &'a str,
    kind: &'a str,
    completion: &'a str,
    action: &'a str,
}

fn report_vxu(r: &Report<'_>) -> Vec<u8> {
    let orc3 = if r.orc.is_empty() {
        String::new()
    } else {
        format!("{}^{}", r.orc, r.facility)
    };
    let rxa9 = if r.kind == "new" {
        "00^New record^NIP001"
    } else {
        "01^Historical^NIP001"
    };
    let refused = r.completion == "RE";
    let orc3 = if refused { "9999".to_owned() } else { orc3 };
    // RXA fields 1 to 21, by number; administered records name their lot
    // (RXA-15) and manufacturer (RXA-17).
    let mut rxa = vec![String::new(); 22];
    rxa[1] = "0".into();
    rxa[2] = "1".into();
    rxa[3] = r.date.into();
    rxa[5] = format!("{}^vaccine^CVX", r.cvx);
    rxa[6] = "999".into();
    // A refusal names no administration source (the IG's own example).
    if !refused {
        rxa[9] = rxa9.into();
    }
    if r.kind == "new" && !refused {
        rxa[15] = "LOT-77".into();
        rxa[17] = "MSD^Merck^MVX".into();
    }
    if refused {
        rxa[18] = "00^Parental decision^NIP002".into();
    }
    rxa[20] = r.completion.into();
    rxa[21] = r.action.into();
    format!(
        "MSH|^~\\&|EHR|{fac}|IIS|IISFAC|20261101120000-0500||VXU^V04^VXU_V04|{ctl}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{fac}|IISFAC\r\
PID|1||{mrn}^^^{fac}^MR||Abara^Chidera^Ngozi^^^^L|Okoro^^^^^^M|20260901|F|||9 Juniper Way^^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550199\r\
NK1|1|Abara^Ifeoma^^^^^L|MTH^Mother^HL70063\r\
ORC|RE||{orc3}\r\
RXA{rxa}\r",
        fac = r.facility,
        ctl = r.control_id,
        mrn = r.mrn,
        rxa = rxa[1..].iter().fold(String::new(), |acc, f| acc + "|" + f),
    )
    .into_bytes()
}

/// Issue "Vaccination-level deduplication": one dose is one event however
/// many times and ways it is reported, over HTTP, in Z32 and in the export.
#[tokio::test(flavor = "multi_thread")]
async fn one_dose_reported_many_ways_is_one_event_in_z32_and_the_export() {
    let data = tempfile::tempdir().unwrap();
    {
        let _first = Server::start(data.path(), &[]);
    }
    iisbulk(&[
        "au",
        "add",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--id",
        "second-clinic",
        "--kind",
        "clinic",
        "--name",
        "Second Clinic",
        "--facility",
        "SECONDFAC",
        "--username",
        "second",
        "--password",
        "second-password-1",
    ]);
    let demo_client = register_client(data.path(), "demo-clinic");
    let server = Server::start(data.path(), &[]);
    let url = server.url.clone();
    let base = Report {
        facility: "DEMOGEN",
        control_id: "",
        mrn: "EV-1",
        orc: "",
        cvx: "08",
        date: "20261101",
        kind: "new",
        completion: "CP",
        action: "A",
    };
    let reports = [
        // The EHR resends the HepB dose with a new ORC-3 each time...
        Report {
            control_id: "EV-01",
            orc: "ORD-1",
            ..base
        },
        Report {
            control_id: "EV-02",
            orc: "ORD-2",
            ..base
        },
        Report {
            control_id: "EV-03",
            orc: "ORD-3",
            ..base
        },
        // ...once without one ("9999", the IG's "no filler order number"),
        // once as CVX 45 (HepB unspecified)...
        Report {
            control_id: "EV-04",
            orc: "9999",
            ..base
        },
        Report {
            control_id: "EV-05",
            orc: "ORD-5",
            cvx: "45",
            ..base
        },
        // ...a second clinic reports it, and as a historical record two
        // days later...
        Report {
            facility: "SECONDFAC",
            control_id: "EV-06",
            mrn: "S-9",
            orc: "S-ORD-1",
            ..base
        },
        Report {
            facility: "SECONDFAC",
            control_id: "EV-07",
            mrn: "S-9",
            orc: "S-ORD-2",
            date: "20261103",
            kind: "historical",
            ..base
        },
        // ...a refusal the same day stays apart...
        Report {
            control_id: "EV-08",
            cvx: "08",
            completion: "RE",
            ..base
        },
        // ...and Pediarix (DTaP-HepB-IPV) with a separate DTaP on one day
        // is one DTaP event (and the same HepB event).
        Report {
            control_id: "EV-09",
            orc: "ORD-9",
            cvx: "110",
            date: "20261201",
            ..base
        },
        Report {
            control_id: "EV-10",
            orc: "ORD-10",
            cvx: "20",
            date: "20261201",
            ..base
        },
    ];
    let second = |r: &Report<'_>| r.facility == "SECONDFAC";
    for r in &reports {
        let (user, pass) = if second(r) {
            ("second", "second-password-1")
        } else {
            (DEMO_USER, DEMO_PASSWORD)
        };
        let (status, answer) = post_hl7(&url, user, pass, report_vxu(r)).await;
        assert_eq!(status, 200);
        assert!(
            answer.contains("MSA|AA") || answer.contains("MSA|AE"),
            "{}: {answer}",
            r.control_id
        );
        server
            .matched
            .recv_timeout(Duration::from_secs(60))
            .expect("message matched");
    }
    let z34 = |ctl: &str| {
        format!(
            "MSH|^~\\&|EHR|DEMOGEN|IIS|IISFAC|20261210120000-0500||QBP^Q11^QBP_Q11|{ctl}|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|DEMOGEN|IISFAC\r\
QPD|Z34^Request Immunization History^CDCPHINVS|Q-{ctl}|EV-1^^^DEMOGEN^MR|Abara^Chidera^Ngozi^^^^L|Okoro^^^^^^M|20260901|F\r\
RCP|I|5^RD&records&HL70126\r"
        )
        .into_bytes()
    };
    let (_, rsp) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, z34("EV-Q1")).await;
    keep_answer("vaccination-events-z32", &rsp);
    assert!(rsp.contains("Z32^CDCPHINVS"), "{rsp}");
    let rxa = segment(&rsp, "RXA");
    // The HepB event (08/45/historical, two clinics), the refusal, the
    // Pediarix event: three.
    assert_eq!(rxa.len(), 3, "{rsp}");
    let hepb: Vec<_> = rxa
        .iter()
        .filter(|r| r.contains("|20261101|") && r.contains("|CP|"))
        .collect();
    assert_eq!(hepb.len(), 1, "{rsp}");
    assert_eq!(
        rxa.iter().filter(|r| r.contains("|RE|")).count(),
        1,
        "{rsp}"
    );
    assert_eq!(
        rxa.iter().filter(|r| r.contains("|20261201|")).count(),
        1,
        "{rsp}"
    );

    // The export: one Immunization per event, each listing its reports.
    let token = access_token(&url, &demo_client);
    let (_, bundle) = get_fhir(
        &format!("{url}/fhir/Group?identifier=demo-clinic"),
        Some(&token),
    )
    .await;
    let group_id = bundle["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..100 {
        let (_, g) = get_fhir(&format!("{url}/fhir/Group/{group_id}"), Some(&token)).await;
        if g["quantity"].as_u64() == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let out = data.path().join("events-export");
    iisbulk(&[
        "export",
        "--url",
        &url,
        "--client-id",
        &demo_client.0,
        "--key",
        demo_client.1.to_str().unwrap(),
        "--group",
        &group_id,
        "--out",
        out.to_str().unwrap(),
    ]);
    let imm_file = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("output-Immunization")
        })
        .expect("an Immunization file");
    let exported: Vec<serde_json::Value> = std::fs::read_to_string(imm_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 3, "{exported:?}");
    for imm in &exported {
        keep_sample(&format!("event-{}", imm["id"].as_str().unwrap()), imm);
    }
    let hepb = exported
        .iter()
        .find(|i| i["occurrenceDateTime"] == "2026-11-01" && i["status"] == "completed")
        .expect("the HepB event");
    let reports_listed = hepb["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["use"] == "secondary")
        .count();
    assert_eq!(reports_listed, 7, "{hepb}");
    assert!(
        hepb["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["system"]
                .as_str()
                .unwrap()
                .ends_with("/report/second-clinic")),
        "{hepb}"
    );

    // The demo clinic withdraws all of its HepB reports: the event stands,
    // on the second clinic's reports.
    for (n, orc) in ["ORD-1", "ORD-2", "ORD-3", "9999", "ORD-5"]
        .iter()
        .enumerate()
    {
        let ctl = format!("EV-D{n}");
        let cvx = if *orc == "ORD-5" { "45" } else { "08" };
        let d = Report {
            control_id: &ctl,
            orc,
            cvx,
            action: "D",
            ..base
        };
        let (status, answer) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, report_vxu(&d)).await;
        assert_eq!(status, 200, "{answer}");
        server
            .matched
            .recv_timeout(Duration::from_secs(60))
            .expect("message matched");
    }
    let (_, rsp) = post_hl7(&url, DEMO_USER, DEMO_PASSWORD, z34("EV-Q2")).await;
    let rxa = segment(&rsp, "RXA");
    assert_eq!(
        rxa.iter()
            .filter(|r| r.contains("|20261101|") && r.contains("|CP|"))
            .count(),
        1,
        "{rsp}"
    );
    assert_eq!(rxa.len(), 3, "{rsp}");
}

/// The console API through `iisbulk serve`: a staff member made with
/// `iisbulk staff add` logs in over HTTP, gets a session cookie (HttpOnly,
/// SameSite=Strict, not Secure on this loopback http URL), reads the
/// session, is refused an administrator's route, and logs out with the
/// CSRF token.
#[tokio::test(flavor = "multi_thread")]
async fn console_login_session_roles_and_logout_through_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args([
            "staff",
            "add",
            "--username",
            "rita",
            "--role",
            "reviewer",
            "--password-stdin",
            "--data-dir",
            data_arg,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin
            .take()
            .unwrap()
            .write_all(b"a long reviewer passphrase\n")
            .unwrap();
    }
    assert!(add.wait().unwrap().success());

    let server = Server::start(&data, &[]);
    let http = client();
    let login = http
        .post(format!("{}/console/api/session", server.url))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"username": "rita", "password": "a long reviewer passphrase"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let set = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "loopback http: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let session: serde_json::Value = serde_json::from_str(&login.text().await.unwrap()).unwrap();
    assert_eq!(session["role"], "reviewer");
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();

    let me = http
        .get(format!("{}/console/api/session", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let staff = http
        .get(format!("{}/console/api/staff", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(staff.status().as_u16(), 403);
    assert_eq!(staff.headers()["content-type"], "application/problem+json");
    let bad = http
        .post(format!("{}/console/api/session", server.url))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": "rita", "password": "wrong passphrase!"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let out = http
        .delete(format!("{}/console/api/session", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let after = http
        .get(format!("{}/console/api/session", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 401);

    // The trail has where the logins came from: the listener's peer.
    drop(server);
    let store = store::embedded::EmbeddedStore::open(data.join("iis.redb")).unwrap();
    let trail = registry::audit::AuditTrail::new(std::sync::Arc::new(store));
    for actor in ["staff/rita", "unauthenticated/rita"] {
        let events = trail
            .search(&registry::audit::AuditSearch {
                actor: Some(actor.into()),
                from_ms: 0,
                to_ms: i64::MAX,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let login = events
            .iter()
            .find(|e| e.action == "console.login")
            .unwrap_or_else(|| panic!("no console.login by {actor}: {events:?}"));
        assert_eq!(login.source.as_deref(), Some("127.0.0.1"), "{actor}");
    }
}

/// Admin work while the IIS runs: with `iisbulk serve` holding the data
/// directory, an administrator (TOTP second factor) onboards a clinic
/// through the console API, and the clinic's first VXU is accepted at once.
#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_onboards_a_clinic_through_the_console_while_serve_runs() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut add = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args([
            "staff",
            "add",
            "--username",
            "ada",
            "--role",
            "administrator",
        ])
        .args(["--password-stdin", "--data-dir", data.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a long administrator passphrase\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8(out.stdout).unwrap();
    let secret = said
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap()
        .to_owned();

    let server = Server::start(&data, &[]);
    let http = client();
    let totp = registry::staff::totp::from_base32(&secret).unwrap();
    let code = format!(
        "{:06}",
        registry::staff::totp::code(
            &totp,
            registry::staff::totp::step_at(iz::Clock::now().unix_seconds),
            registry::staff::totp::DIGITS
        )
    );
    let login = http
        .post(format!("{}/console/api/session", server.url))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"username": "ada", "password": "a long administrator passphrase", "code": code})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session: serde_json::Value = serde_json::from_str(&login.text().await.unwrap()).unwrap();
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();

    // Before onboarding, the clinic's login is refused.
    let vxu = "MSH|^~\\&|EHR|VALLEYPEDS|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|V-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|VALLEYPEDS|IISFAC\r\
PID|1||V100^^^VALLEYPEDS^MR||Rivera^Lucia^^^^^L|Cruz^^^^^^M|20240305|F|||3 Oak Street^^Lansing^MI^48910^USA^P\r\
ORC|RE||V-D1^VALLEYPEDS\rRXA|0|1|20240305||08^HepB^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let (status, _) = post_hl7(&server.url, "valley", "a long enough password", vxu.into()).await;
    assert_eq!(status, 401);

    let added = http
        .post(format!("{}/console/api/authorized-users", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "id": "valley-peds", "kind": "clinic", "name": "Valley Pediatrics",
                "facilities": ["VALLEYPEDS"], "username": "valley",
                "password": "a long enough password"
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        added.status().as_u16(),
        201,
        "{}",
        added.text().await.unwrap()
    );
    let (status, ack) = post_hl7(&server.url, "valley", "a long enough password", vxu.into()).await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack.contains("MSA|AA|V-1"), "{ack}");
}

/// Runs `iisbulk` with `stdin` on standard input; returns stdout and stderr.
fn iisbulk_with_stdin(args: &[&str], stdin: &str) -> (String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "iisbulk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Issue 25: an IIS does not go offline to onboard a clinic. With `iisbulk
/// serve` holding the data directory, the admin commands run from a second
/// terminal work through the server's store, and the server acts on what
/// they wrote at once.
#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_work_from_a_second_terminal_while_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let d = data.to_str().unwrap();

    // The server announces its lent store to the data directory's owner only.
    let lender = data.join("serve-admin.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&lender).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    let (said, note) = iisbulk_with_stdin(
        &[
            "au",
            "add",
            "--data-dir",
            d,
            "--id",
            "valley",
            "--kind",
            "clinic",
            "--name",
            "Valley Pediatrics",
            "--facility",
            "VALLEYPEDS",
            "--username",
            "valley",
            "--password-stdin",
        ],
        "valley clinic password\n",
    );
    assert!(said.contains("added Authorized User 'valley'"), "{said}");
    assert!(
        note.contains("working through it at http://127.0.0.1:"),
        "{note}"
    );
    let group = said
        .lines()
        .find_map(|l| l.strip_prefix("Group "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_owned();

    // The running server accepts the new clinic's first VXU at once.
    let vxu = "MSH|^~\\&|EHR|VALLEYPEDS|IIS|IIS|20250601120000-0500||VXU^V04^VXU_V04|V-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|VALLEYPEDS|IIS\r\
PID|1||V100^^^VALLEYPEDS^MR||Okonkwo^Adaeze^^^^^L|Eze^^^^^^M|20240305|F|||9 Birch Road^^Lansing^MI^48910^USA^P\r\
ORC|RE||V-1-1^VALLEYPEDS\rRXA|0|1|20240505||20^DTaP^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let (status, answer) = post_hl7(
        &server.url,
        "valley",
        "valley clinic password",
        vxu.as_bytes().to_vec(),
    )
    .await;
    assert_eq!((status, msa1(&answer).as_str()), (200, "AA"), "{answer}");

    // A client registered from the second terminal gets a token from the
    // running server.
    let smart_client = register_client(&data, "valley");
    assert!(!access_token(&server.url, &smart_client).is_empty());

    // The child joins the clinic's Group, seen by `group members`.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let members = iisbulk(&["group", "members", "--data-dir", d, &group]);
        if !members.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never joined the Group"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The review queue and staff administration work too.
    iisbulk(&["patients", "review", "--data-dir", d]);
    iisbulk_with_stdin(
        &[
            "staff",
            "add",
            "--data-dir",
            d,
            "--username",
            "rita",
            "--role",
            "reviewer",
            "--password-stdin",
        ],
        "a long console passphrase\n",
    );
    let login = client()
        .post(format!("{}/console/api/session", server.url))
        .header("content-type", "application/json")
        .body(r#"{"username":"rita","password":"a long console passphrase"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // Nobody without the token may use the lent store.
    let stranger = client()
        .post(format!("{}/admin/store", server.url))
        .header("authorization", "Bearer guess")
        .body(r#"{"op":"get","key":{"pk":"AU#valley","sk":"AU"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
}

/// The served token endpoint knows its caller's address: the 21st request
/// of one address in a burst is refused with 429 and Retry-After (issue 25:
/// a per-source limit, never a per-client lockout).
#[tokio::test(flavor = "multi_thread")]
async fn the_served_token_endpoint_limits_each_address() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let token_url = format!("{}/auth/token", server.url);
    let post = || {
        client()
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
    };
    for i in 0..20 {
        let r = post().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "request {i}");
    }
    let r = post().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// The token endpoint's per-address limit is the operator's to set: a burst
/// of 2 lets the third request of one address through no more, and a limit
/// that is none stops start-up naming the options.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_limit_per_address_is_set_on_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--token-burst",
            "0",
            "--data-dir",
        ])
        .arg(data.path().join("refused"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--token-burst"), "{err}");

    let server = Server::start(
        &data.path().join("served"),
        &["--token-burst", "2", "--token-rate-per-second", "0.01"],
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = client()
            .post(format!("{}/auth/token", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [400, 400, 429],
        "two bad requests, then the limit"
    );
}

/// V2-dynamic (issue 26): with the jurisdiction's option on, the Z32 gives
/// the asker the person's FHIR Patient id, and the asker's SMART client
/// reads that Patient with it.
#[tokio::test(flavor = "multi_thread")]
async fn with_v2_dynamic_a_z32_gives_the_patient_id_the_clinic_reads_over_fhir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policy/jurisdiction.toml"),
    )
    .unwrap();
    std::fs::write(
        &policy,
        shipped
            .replace("patient_identifier = false", "patient_identifier = true")
            .replace(
                "# patient_identifier_type = \"PI\"",
                "patient_identifier_type = \"PI\"",
            )
            .replace(
                "# patient_assigning_authority = \"IISFHIR\"",
                "patient_assigning_authority = \"IISFHIR\"",
            ),
    )
    .unwrap();
    let server = Server::start(&data, &["--policy", policy.to_str().unwrap()]);
    let vxu = "MSH|^~\\&|EHR|DEMOGEN|IIS|IIS|20250601120000-0500||VXU^V04^VXU_V04|DYN-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMOGEN|IIS\r\
PID|1||DYN100^^^DEMOGEN^MR||Lindqvist^Elsa^^^^^L|Berg^^^^^^M|20240305|F|||4 Pine Road^^Lansing^MI^48910^USA^P\r\
ORC|RE||DYN-1-1^DEMOGEN\rRXA|0|1|20240505||20^DTaP^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let (status, ack) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, vxu.into()).await;
    assert_eq!((status, msa1(&ack).as_str()), (200, "AA"), "{ack}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("the VXU was matched");
    let z34 = "MSH|^~\\&|EHR|DEMOGEN|IIS|IIS|20250601120000-0500||QBP^Q11^QBP_Q11|DYN-Q1|P|2.5.1|||ER|AL|||||Z34^CDCPHINVS|DEMOGEN|IIS\r\
QPD|Z34^Request Immunization History^CDCPHINVS|Q-DYN|DYN100^^^DEMOGEN^MR|Lindqvist^Elsa^^^^^L|Berg^^^^^^M|20240305|F\r\
RCP|I|5^RD&records&HL70126\r";
    let (status, rsp) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, z34.into()).await;
    assert_eq!(status, 200);
    assert!(rsp.contains("Z32^CDCPHINVS"), "{rsp}");
    let pid = segment(&rsp, "PID")[0];
    let id = pid
        .split('|')
        .nth(3)
        .unwrap()
        .split('~')
        .find_map(|cx| cx.strip_suffix("^^^IISFHIR^PI"))
        .unwrap_or_else(|| panic!("no FHIR Patient id in PID-3: {pid}"))
        .to_owned();
    // Registered while the server runs: the command works through it.
    let client = register_client(&data, "demo-clinic");
    let token = access_token(&server.url, &client);
    let (status, patient) =
        get_fhir(&format!("{}/fhir/Patient/{id}", server.url), Some(&token)).await;
    assert_eq!(status, 200, "{patient}");
    assert_eq!(patient["id"], id.as_str());
    assert_eq!(patient["name"][0]["family"], "Lindqvist");
}

/// A client that may also manage its Group's members.
fn register_managing_client(data: &Path, au: &str) -> (String, PathBuf) {
    let key = data.join(format!("{au}-manager.p8"));
    std::fs::write(
        &key,
        registry::smart::jose::SigningKey::generate_es384().unwrap(),
    )
    .unwrap();
    let jwks = data.join(format!("{au}-manager.jwks.json"));
    std::fs::write(&jwks, iisbulk(&["jwks", "--key", key.to_str().unwrap()])).unwrap();
    let said = iisbulk(&[
        "client",
        "add",
        "--data-dir",
        data.to_str().unwrap(),
        "--au",
        au,
        "--jwks",
        jwks.to_str().unwrap(),
        "--scope",
        "system/*.rs system/Group.u",
    ]);
    let id = said
        .lines()
        .find_map(|l| l.strip_prefix("client_id "))
        .unwrap()
        .to_owned();
    (id, key)
}

async fn post_fhir(url: &str, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = client()
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clinic_matches_its_patient_over_fhir_and_manages_its_group_through_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let vxu = "MSH|^~\\&|EHR|DEMOGEN|IIS|IIS|20250601120000-0500||VXU^V04^VXU_V04|MM-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMOGEN|IIS\r\
PID|1||MM100^^^DEMOGEN^MR||Haugen^Ingrid^^^^^L|Berg^^^^^^M|20230912|F|||4 Pine Road^^Lansing^MI^48910^USA^P\r\
ORC|RE||MM-1-1^DEMOGEN\rRXA|0|1|20240505||20^DTaP^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let (status, ack) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, vxu.into()).await;
    assert_eq!((status, msa1(&ack).as_str()), (200, "AA"), "{ack}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("the VXU was matched");
    let client = register_managing_client(&data, "demo-clinic");
    let token = iisbulk(&[
        "token",
        "--url",
        &server.url,
        "--client-id",
        &client.0,
        "--key",
        client.1.to_str().unwrap(),
        "--scope",
        "system/*.rs system/Group.u",
    ]);
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    // $match: the clinic's patient, certainly, with the Patient id.
    let (status, bundle) = post_fhir(
        &format!("{}/fhir/Patient/$match", server.url),
        &token,
        &serde_json::json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
            "resourceType": "Patient", "name": [{"family": "Haugen", "given": ["Ingrid"]}],
            "birthDate": "2023-09-12", "gender": "female",
            "address": [{"line": ["4 Pine Road"], "city": "Lansing", "state": "MI", "postalCode": "48910"}]}}]}),
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["total"], 1, "{bundle}");
    assert_eq!(
        bundle["entry"][0]["search"]["extension"][0]["valueCode"],
        "certain"
    );
    let patient = bundle["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The clinic's Group: the VXU put her there.
    let (status, groups) = get_fhir(
        &format!("{}/fhir/Group?identifier=demo-clinic", server.url),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{groups}");
    let group = groups["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let members = |g: &serde_json::Value| -> Vec<(String, bool)> {
        g["member"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["entity"]["reference"].as_str().unwrap_or("").to_owned(),
                    m["inactive"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let (_, g) = get_fhir(&format!("{}/fhir/Group/{group}", server.url), Some(&token)).await;
    assert!(
        members(&g).contains(&(format!("Patient/{patient}"), false)),
        "{g}"
    );

    // Removed by reference, then added back by the clinic's chart number.
    let (status, outcome) = post_fhir(
        &format!("{}/fhir/Group/{group}/$member-remove", server.url),
        &token,
        &serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "patientReference", "valueReference": {"reference": format!("Patient/{patient}")}}]}),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    let (_, g) = get_fhir(&format!("{}/fhir/Group/{group}", server.url), Some(&token)).await;
    assert!(
        members(&g).contains(&(format!("Patient/{patient}"), true)),
        "{g}"
    );
    let (status, outcome) = post_fhir(
        &format!("{}/fhir/Group/{group}/$member-add", server.url),
        &token,
        &serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "memberId", "valueIdentifier": {"system": "urn:iisbulk:id/authority/DEMOGEN", "value": "MM100"}}]}),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    let (_, g) = get_fhir(&format!("{}/fhir/Group/{group}", server.url), Some(&token)).await;
    assert!(
        members(&g).contains(&(format!("Patient/{patient}"), false)),
        "{g}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clinic_bulk_matches_its_patients_through_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--bulk-match-max-patients", "2"]);
    let vxu = "MSH|^~\\&|EHR|DEMOGEN|IIS|IIS|20250601120000-0500||VXU^V04^VXU_V04|BM-1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMOGEN|IIS\r\
PID|1||BM100^^^DEMOGEN^MR||Haugen^Ingrid^^^^^L|Berg^^^^^^M|20230912|F|||4 Pine Road^^Lansing^MI^48910^USA^P\r\
ORC|RE||BM-1-1^DEMOGEN\rRXA|0|1|20240505||20^DTaP^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r";
    let (status, ack) = post_hl7(&server.url, DEMO_USER, DEMO_PASSWORD, vxu.into()).await;
    assert_eq!((status, msa1(&ack).as_str()), (200, "AA"), "{ack}");
    server
        .matched
        .recv_timeout(Duration::from_secs(60))
        .expect("the VXU was matched");
    let client_key = register_managing_client(&data, "demo-clinic");
    let token = iisbulk(&[
        "token",
        "--url",
        &server.url,
        "--client-id",
        &client_key.0,
        "--key",
        client_key.1.to_str().unwrap(),
        "--scope",
        "system/*.rs",
    ]);
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let patient = |id: &str, family: &str, given: &str, birth: &str| {
        serde_json::json!({"name": "resource", "resource": {"resourceType": "Patient", "id": id,
            "name": [{"family": family, "given": [given]}], "birthDate": birth, "gender": "female",
            "address": [{"line": ["4 Pine Road"], "city": "Lansing", "state": "MI", "postalCode": "48910"}]}})
    };
    let kick_off = |body: serde_json::Value| {
        let url = format!("{}/fhir/Patient/$bulk-match", server.url);
        let token = token.clone();
        async move {
            client()
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .header("prefer", "respond-async")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let ingrid = patient("mine-1", "Haugen", "Ingrid", "2023-09-12");
    let stranger = patient("mine-2", "Quist", "Alma", "2019-01-30");
    // Over the limit given on the command line.
    let r = kick_off(serde_json::json!({"resourceType": "Parameters",
        "parameter": [ingrid.clone(), stranger.clone(), patient("mine-3", "Haugen", "Ingrid", "2023-09-12")]}))
    .await;
    assert_eq!(r.status().as_u16(), 413);
    let r = kick_off(
        serde_json::json!({"resourceType": "Parameters", "parameter": [ingrid, stranger]}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
    let status_url = r.headers()["content-location"].to_str().unwrap().to_owned();
    assert!(status_url.starts_with(&server.url), "{status_url}");
    // The worker runs it: poll until done.
    let started = std::time::Instant::now();
    let manifest = loop {
        let r = client()
            .get(&status_url)
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => {
                assert!(r.headers().contains_key("x-progress"));
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "never finished"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            200 => {
                break serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap()).unwrap()
            }
            s => panic!("status {s}: {:?}", r.text().await),
        }
    };
    assert_eq!(manifest["output"][0]["count"], 2, "{manifest}");
    let url = manifest["output"][0]["url"].as_str().unwrap();
    let ndjson = client()
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let bundles: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bundles.len(), 2);
    assert_eq!(
        bundles[0]["meta"]["extension"][0]["valueReference"]["reference"],
        "Patient/mine-1"
    );
    assert_eq!(bundles[0]["total"], 1, "{}", bundles[0]);
    assert_eq!(
        bundles[0]["entry"][0]["resource"]["name"][0]["family"],
        "Haugen"
    );
    assert_eq!(
        bundles[1]["meta"]["extension"][0]["valueReference"]["reference"],
        "Patient/mine-2"
    );
    assert_eq!(bundles[1]["total"], 0, "{}", bundles[1]);
}
