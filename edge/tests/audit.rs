//! The audit log under attack and power loss: an altered record is found at its own line, a
//! removed record at the next, a torn last line is reported with the records before it
//! intact and cut off (kept aside) on restart, and `kill -9` of `edge run` in the middle of
//! screening leaves a log that verifies after a restart. Also `edge run --watch` itself:
//! dropped files (one written slowly in two halves, a DICOM, an ungradable one, a non-image)
//! are each screened once, and a restart does not screen them again.
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture;
use crate::screen::{edge, lines, s};
use crate::support::sample;

fn samples() -> Option<Vec<PathBuf>> {
    [
        "DRIVE_22.png",
        "HRF_07_dr.jpg",
        "CHASEDB1_08L.png",
        "retina.jpg",
    ]
    .iter()
    .map(|n| sample(n))
    .collect()
}

/// Screens `images` one-shot on a fresh device; returns (device, log path).
fn logged(dir: &Path, images: &[PathBuf]) -> (PathBuf, PathBuf) {
    let device = fixture::device(dir);
    let mut args = vec!["screen", "--device", s(&device)];
    args.extend(images.iter().map(|p| s(p)));
    let o = edge(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (device.clone(), device.join("log/audit.jsonl"))
}

fn verify(log: &Path) -> (bool, String) {
    let o = edge(&["verify-log", s(log)]);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn altered_removed_and_torn_records_are_found_where_they_are() {
    let Some(images) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (device, log) = logged(dir.path(), &images);
    let text = std::fs::read_to_string(&log).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        verify(&log),
        (true, format!("{}: 4 records verify\n", log.display()))
    );

    // A result changed in record 2: caught at line 2, record 1 still verifies.
    let altered = rows[1].replacen("\"result\":\"", "\"result\":\"not_", 1);
    let altered = if altered == rows[1] {
        rows[1].replacen("\"threshold\":0.5", "\"threshold\":0.9", 1)
    } else {
        altered
    };
    assert_ne!(altered, rows[1]);
    let bad = dir.path().join("altered.jsonl");
    std::fs::write(
        &bad,
        [rows[0], &altered, rows[2], rows[3]].join("\n") + "\n",
    )
    .unwrap();
    let (ok, out) = verify(&bad);
    assert!(
        !ok && out.contains("BROKEN at line 2") && out.contains("altered"),
        "{out}"
    );
    assert!(out.contains("records 1..1 verify"), "{out}");

    // Record 2 removed: line 2 (formerly record 3) no longer links.
    let bad = dir.path().join("removed.jsonl");
    std::fs::write(&bad, [rows[0], rows[2], rows[3]].join("\n") + "\n").unwrap();
    let (ok, out) = verify(&bad);
    assert!(!ok && out.contains("BROKEN at line 2"), "{out}");

    // Power cut in the middle of writing record 4: reported as torn, 3 records intact.
    let torn = format!("{}\n{}\n{}\n{}", rows[0], rows[1], rows[2], &rows[3][..40]);
    std::fs::write(&log, &torn).unwrap();
    let (ok, out) = verify(&log);
    assert!(!ok, "{out}");
    assert!(out.contains("3 records verify") && out.contains("torn last line after record 3"));
    // The next run cuts the torn tail off (kept aside) and continues the chain at record 4.
    let image = &images[0];
    let o = edge(&["screen", "--device", s(&device), s(image)]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("was cut off"));
    assert_eq!(lines(&o)[0]["audit_seq"], 4);
    assert_eq!(
        verify(&log),
        (true, format!("{}: 4 records verify\n", log.display()))
    );
    let aside: Vec<_> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), &rows[3][..40]);

    // A broken log is refused before anything is screened.
    std::fs::write(&log, [rows[0], &altered].join("\n") + "\n").unwrap();
    let o = edge(&["screen", "--device", s(&device), s(image)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken at line 2"));
}

fn spawn_run(device: &Path, inbox: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_edge"))
        .args([
            "run",
            "--device",
            s(device),
            "--watch",
            s(inbox),
            "--poll-ms",
            "100",
            "--no-gpio",
        ])
        .env_remove("FOVEA_DEVICE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("edge run starts")
}

/// Reads `n` JSON lines from the service's stdout, failing after `limit`.
fn read_lines(child: &mut Child, n: usize, limit: Duration) -> Vec<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        let left = limit.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(l) => out.push(serde_json::from_str(&l).unwrap()),
            Err(_) => panic!("only {} of {n} lines in {limit:?}: {out:?}", out.len()),
        }
    }
    out
}

#[test]
fn run_watch_screens_dropped_files_once_even_across_a_restart() {
    let Some(images) = samples() else { return };
    let (Some(dicom), Some(dark)) = (sample("issue_3.dcm"), sample("sample_dark.png")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut child = spawn_run(&device, &inbox);
    // A capture written slowly in two halves, as a camera over a network share might.
    let bytes = std::fs::read(&images[0]).unwrap();
    let slow = inbox.join("slow.png");
    let mut f = std::fs::File::create(&slow).unwrap();
    f.write_all(&bytes[..bytes.len() / 2]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    std::fs::copy(&dicom, inbox.join("op.dcm")).unwrap();
    std::fs::copy(&dark, inbox.join("dark.png")).unwrap();
    std::fs::write(inbox.join("junk.jpg"), "not a jpeg").unwrap();
    std::fs::write(inbox.join(".partial-upload.png"), "hidden: ignored").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    f.write_all(&bytes[bytes.len() / 2..]).unwrap();
    f.flush().unwrap();
    drop(f);
    let mut out = read_lines(&mut child, 4, Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    out.sort_by_key(|l| l["file"].as_str().unwrap().to_owned());
    let names: Vec<&str> = out.iter().map(|l| l["file"].as_str().unwrap()).collect();
    assert!(
        names[0].ends_with("dark.png") && names[3].ends_with("slow.png"),
        "{names:?}"
    );
    assert_eq!(out[0]["finding"], "ungradable");
    assert!(
        out[1]["error"].as_str().unwrap().contains("junk.jpg"),
        "{}",
        out[1]
    );
    assert_eq!(
        out[2]["quality"]["verdict"], "gradable",
        "DICOM screened: {}",
        out[2]
    );
    let want = fixture::expected_probabilities(&images[0]);
    let got: Vec<f32> = serde_json::from_value(out[3]["probabilities"].clone()).unwrap();
    assert!(
        (got[1] - want[1]).abs() < 1e-5,
        "the whole file was screened: {got:?}"
    );

    // Restarted: the screened files are not screened again (the file that is not an image
    // is reported again: errors are not audit records); a new one is screened.
    let mut child = spawn_run(&device, &inbox);
    std::fs::copy(&images[1], inbox.join("new.jpg")).unwrap();
    let mut out = read_lines(&mut child, 2, Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    out.sort_by_key(|l| l["file"].as_str().unwrap().to_owned());
    assert!(
        out[0]["error"].as_str().unwrap().contains("junk.jpg"),
        "{out:?}"
    );
    assert!(
        out[1]["file"].as_str().unwrap().ends_with("new.jpg"),
        "{out:?}"
    );
    assert_eq!(out[1]["audit_seq"], 4, "{out:?}");
    let log = device.join("log/audit.jsonl");
    assert!(verify(&log).0);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
}

#[test]
fn kill_9_while_screening_leaves_a_log_that_verifies_after_restart() {
    let Some(images) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for round in 0..6 {
        for (i, img) in images.iter().enumerate() {
            // Distinct bytes per copy (a trailing byte), so each is a new image.
            let mut b = std::fs::read(img).unwrap();
            b.push(round as u8);
            let ext = img.extension().unwrap().to_str().unwrap();
            std::fs::write(inbox.join(format!("r{round}-{i}.{ext}")), b).unwrap();
        }
    }
    let mut child = spawn_run(&device, &inbox);
    let _ = read_lines(&mut child, 3, Duration::from_secs(60));
    // SIGKILL mid-stream: no chance to finish a write cleanly.
    child.kill().unwrap();
    child.wait().unwrap();
    let log = device.join("log/audit.jsonl");
    let (_, out) = verify(&log);
    assert!(!out.contains("BROKEN"), "{out}");
    // Restart: the log verifies and the remaining images are screened, none twice.
    let done = std::fs::read_to_string(&log).unwrap().lines().count();
    let mut child = spawn_run(&device, &inbox);
    let _ = read_lines(&mut child, 24 - done, Duration::from_secs(120));
    child.kill().unwrap();
    child.wait().unwrap();
    let (ok, out) = verify(&log);
    assert!(ok, "{out}");
    assert!(out.contains("24 records verify"), "{out}");
}

#[test]
fn run_without_a_board_file_names_it_and_suggests_no_gpio() {
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let o = edge(&["run", "--device", s(&device)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("board.toml") && err.contains("--no-gpio"),
        "{err}"
    );
}
