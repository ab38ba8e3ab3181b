//! The `chargeledger` binary. Exit codes: 0 success; 1 a check found something
//! (`audit verify` findings); 2 the command could not run (bad arguments,
//! configuration, database).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = chargeledger_api::cli::Cli::parse();
    match chargeledger_api::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
