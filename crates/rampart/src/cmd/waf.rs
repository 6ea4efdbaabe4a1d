//! `rampart waf`: check a rule set loads, and run the OWASP CRS regression suite in-process.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_config::{Config, CrsSource};

use super::UsageError;

/// WAF commands.
#[derive(Debug, clap::Subcommand)]
pub enum WafCommand {
    /// Load a rule set and report the rule count and anything approximated. Without --rules,
    /// checks what [waf] in the configuration loads.
    Check {
        /// A Core Rule Set directory (holding rules/ and crs-setup.conf or its .example).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Run the CRS regression suite (go-ftw YAML) in-process: DetectionOnly, paranoia level
    /// 4, the test configuration of the CRS test README. Ends with `N passed, M failed, K
    /// skipped`; exits 1 if a test outside the overrides failed.
    TestCrs {
        /// The CRS directory (its root or its rules/ folder).
        #[arg(long, value_name = "DIR")]
        rules: PathBuf,
        /// The tests [default: DIR/tests/regression/tests].
        #[arg(long, value_name = "DIR")]
        tests: Option<PathBuf>,
        /// Known failures, go-ftw `test_overrides` format, each with its reason.
        #[arg(long, value_name = "FILE")]
        overrides: Option<PathBuf>,
    },
}

/// Runs one WAF command.
pub fn run(command: WafCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        WafCommand::Check { rules } => {
            let mut waf = config.waf.clone();
            if let Some(dir) = rules {
                waf.crs = CrsSource::Dir(dir);
                waf.crs_setup = None;
            }
            let started = std::time::Instant::now();
            match crate::waf::load(&waf)? {
                Some(loaded) => {
                    println!(
                        "{} (loaded in {:.0?})",
                        loaded.description,
                        started.elapsed()
                    );
                    for warning in loaded.ruleset.warnings() {
                        println!("warning: {warning}");
                    }
                }
                None => println!("no rules: the WAF is off"),
            }
            Ok(ExitCode::SUCCESS)
        }
        WafCommand::TestCrs {
            rules,
            tests,
            overrides,
        } => {
            let root = if rules.ends_with("rules") {
                rules.parent().map_or_else(|| rules.clone(), PathBuf::from)
            } else {
                rules.clone()
            };
            let tests = tests.unwrap_or_else(|| root.join("tests/regression/tests"));
            if !tests.is_dir() {
                return Err(
                    UsageError(format!("--tests: {} is not a directory", tests.display())).into(),
                );
            }
            let report = rampart_waf::crs_tests::run(&rules, &tests, overrides.as_deref())
                .map_err(|error| UsageError(error.to_string()))?;
            println!("{report}");
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
