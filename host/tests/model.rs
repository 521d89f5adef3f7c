//! `host model`: the printed architecture of EfficientNet variants.
use crate::cli::host;

fn stdout_of(args: &[&str]) -> String {
    let out = host(args);
    assert!(
        out.status.success(),
        "host {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn field<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{report}"))
        .trim()
}

fn stages(report: &str) -> Vec<&str> {
    report
        .lines()
        .skip_while(|l| *l != "stages")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect()
}

#[test]
fn b0_prints_timm_stages_and_count() {
    // timm/models/efficientnet.py `_gen_efficientnet` arch_def, and
    // sum(p.numel() for p in timm.create_model('efficientnet_b0').parameters()
    //     if p.requires_grad) == 5288548  (timm 1.0.31)
    let report = stdout_of(&["model", "--variant", "b0", "--classes", "1000"]);
    assert_eq!(
        stages(&report),
        [
            "ds_r1_k3_s1_e1_c16_se0.25",
            "ir_r2_k3_s2_e6_c24_se0.25",
            "ir_r2_k5_s2_e6_c40_se0.25",
            "ir_r3_k3_s2_e6_c80_se0.25",
            "ir_r3_k5_s1_e6_c112_se0.25",
            "ir_r4_k5_s2_e6_c192_se0.25",
            "ir_r1_k3_s1_e6_c320_se0.25",
        ]
    );
    assert_eq!(field(&report, "resolution"), "224");
    assert_eq!(field(&report, "dropout"), "0.2");
    assert_eq!(field(&report, "activation"), "silu");
    assert_eq!(field(&report, "parameters"), "5288548 (5.29 M)");
}

#[test]
fn b7_and_lite0_counts_match_timm() {
    // timm.create_model('efficientnet_b7') -> 66347960; 'efficientnet_lite0' -> 4652008
    let b7 = stdout_of(&["model", "--variant", "b7", "--classes", "1000"]);
    assert_eq!(field(&b7, "parameters"), "66347960 (66.35 M)");
    assert_eq!(field(&b7, "resolution"), "600");
    assert_eq!(field(&b7, "dropout"), "0.5");
    let lite0 = stdout_of(&["model", "--variant", "lite0", "--classes", "1000"]);
    assert_eq!(field(&lite0, "parameters"), "4652008 (4.65 M)");
    assert_eq!(field(&lite0, "activation"), "relu6");
    assert!(stages(&lite0).iter().all(|s| !s.contains("_se")));
}

#[test]
fn default_is_b0_with_five_grades() {
    // timm.create_model('efficientnet_b0', num_classes=5) -> 4013953
    let report = stdout_of(&["model"]);
    assert_eq!(field(&report, "variant"), "b0 (efficientnet_b0)");
    assert_eq!(field(&report, "classes"), "5");
    assert_eq!(field(&report, "parameters"), "4013953 (4.01 M)");
}

#[test]
fn blocks_lists_every_block() {
    let report = stdout_of(&["model", "--variant", "lite4", "--blocks"]);
    assert_eq!(field(&report, "blocks"), "30");
    let rows = report.lines().skip_while(|l| !l.starts_with('#')).skip(1);
    assert_eq!(rows.count(), 30);
}

#[test]
fn rejects_unknown_variant_and_zero_classes() {
    let out = host(&["model", "--variant", "b9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lite4"), "lists the variants: {err}");
    let out = host(&["model", "--classes", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
