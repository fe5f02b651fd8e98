//! `mintframe jobs`, and following any job with a progress bar.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use mintframe_studio::{App, Scope, Settings, Worker};
use mintframe_types::{JobEvent, JobRecord, JobState};

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCmd {
    /// List jobs (unfinished ones unless --all).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: crate::Output,
    },
    /// Cancel a job, here or in the process that runs it.
    Cancel { id: String },
    /// Run queued jobs (ones left by a stopped process are re-queued on start), or run one
    /// cancelled or failed job again from where it stopped.
    Resume {
        /// A job id (or a unique prefix); every queued job if left out.
        id: Option<String>,
    },
}

pub(crate) fn when(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Follows a job with a progress bar until it ends (here or in whichever process runs it).
pub(crate) fn follow_with_bar(
    worker: &Worker,
    rx: &std::sync::mpsc::Receiver<JobEvent>,
    job: &JobRecord,
) -> Result<JobRecord> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:<24} [{bar:30}] {pos}/{len} {per_sec} {elapsed}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let record = worker.follow(&job.id, rx, &mut |ev: &JobEvent| {
        if ev.state == JobState::Queued {
            bar.set_message("queued");
        }
        if let Some(p) = &ev.progress {
            let eta = ev
                .eta_secs
                .map(|s| format!(" · {s} s left"))
                .unwrap_or_default();
            bar.set_message(format!("{}{eta}", p.stage));
            bar.set_length(p.total);
            bar.set_position(p.step);
        }
    })?;
    bar.finish_and_clear();
    Ok(record)
}

/// Submits through a worker that runs only this command's job, and follows it unless `detach`.
pub(crate) fn submit_and_follow(
    app: App,
    detach: bool,
    submit: impl FnOnce(&Worker) -> Result<JobRecord, mintframe_studio::StudioError>,
    announce: impl FnOnce(&App, &JobRecord),
) -> Result<Option<(std::sync::Arc<App>, JobRecord)>> {
    let app = std::sync::Arc::new(app);
    let worker = if detach {
        Worker::queue_only(std::sync::Arc::clone(&app))?
    } else {
        Worker::start(std::sync::Arc::clone(&app), Scope::Only(Default::default()))?
    };
    let rx = worker.subscribe();
    let job = submit(&worker)?;
    if detach {
        println!("{}", job.id);
        return Ok(None);
    }
    announce(&app, &job);
    let record = follow_with_bar(&worker, &rx, &job)?;
    drop(worker);
    Ok(Some((app, record)))
}

pub(crate) fn report_job(record: &JobRecord) -> Result<()> {
    for id in &record.outputs {
        println!("imported {id}");
    }
    // A job that refused its only file says so in its error; a batch lists each refusal.
    if record.state == JobState::Succeeded || record.refused.len() > 1 {
        for r in &record.refused {
            eprintln!("refused {}: {}", r.path, r.reason);
        }
    }
    match record.state {
        JobState::Succeeded if record.refused.is_empty() => Ok(()),
        JobState::Succeeded => bail!(
            "{} of {} files refused (listed above); the other {} imported",
            record.refused.len(),
            record.refused.len() + record.outputs.len(),
            record.outputs.len()
        ),
        JobState::Cancelled => bail!(
            "job {} was cancelled; {} file(s) imported before it stopped",
            record.id,
            record.outputs.len()
        ),
        _ => bail!(
            "job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        ),
    }
}

pub(crate) fn jobs(settings: &Settings, cmd: JobsCmd) -> Result<()> {
    let app = App::open(settings.clone())?;
    match cmd {
        JobsCmd::List { all, out } => {
            let jobs = app.jobs().list(!all)?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                println!("No {}jobs.", if all { "" } else { "unfinished " });
            } else {
                for j in jobs {
                    let progress = j
                        .progress
                        .as_ref()
                        .map(|p| format!("{} {}/{}", p.stage, p.step, p.total))
                        .unwrap_or_default();
                    println!(
                        "{}  {:<9}  {:<7}  {}  {}{}",
                        j.id,
                        j.state,
                        j.spec.name(),
                        when(j.created_at_ms),
                        progress,
                        j.error.map(|e| format!("  ({e})")).unwrap_or_default()
                    );
                }
            }
        }
        JobsCmd::Cancel { id } => {
            let state = app.jobs().cancel(&id)?;
            match state {
                JobState::Cancelled => println!("cancelled"),
                JobState::Running => println!("cancel requested; the job stops at its next step"),
                other => println!("the job had already ended ({other})"),
            }
        }
        JobsCmd::Resume { id: Some(id) } => {
            let job = app.jobs().requeue(&id)?;
            let app = std::sync::Arc::new(app);
            let worker = Worker::start(app, Scope::Only(Default::default()))?;
            let rx = worker.subscribe();
            worker.adopt(&job);
            let r = follow_with_bar(&worker, &rx, &job)?;
            println!("{}  {}", r.id, r.state);
            if r.state != JobState::Succeeded {
                bail!(
                    "job {} {}: {}",
                    r.id,
                    r.state,
                    r.error.as_deref().unwrap_or("no reason recorded")
                );
            }
        }
        JobsCmd::Resume { id: None } => {
            let queued: Vec<JobRecord> = app
                .jobs()
                .list(true)?
                .into_iter()
                .filter(|j| j.state == JobState::Queued)
                .collect();
            if queued.is_empty() {
                println!("No queued jobs.");
                return Ok(());
            }
            let app = std::sync::Arc::new(app);
            let worker = Worker::start(std::sync::Arc::clone(&app), Scope::Queue)?;
            worker.drain()?;
            for j in queued {
                let r = app.jobs().get(&j.id.0)?;
                println!("{}  {}", r.id, r.state);
            }
        }
    }
    Ok(())
}
