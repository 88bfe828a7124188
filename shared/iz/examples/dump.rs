fn main() {
    for p in std::env::args().skip(1) {
        let bytes = std::fs::read(&p).expect("read");
        let msg = match hl7::Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                println!("== {p}: {e}");
                continue;
            }
        };
        let clock = iz::Clock::now();
        let i = iz::judge(&msg, clock);
        println!(
            "== {p}: {:?} {:?} accepted={}",
            i.kind, i.ack_code, i.accepted
        );
        for f in &i.findings {
            println!(
                "   {} {} {} {:?} [{}] {}",
                f.location,
                f.hl7_code.code(),
                f.severity.code(),
                f.app_code.map(|a| a.code()),
                f.rule,
                f.message
            );
        }
    }
}
