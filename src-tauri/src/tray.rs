//! The tray icon: the pool at a glance while the window is hidden.
//!
//! [`TrayModel::of`] turns the pool's state into what the tray shows — the counts in the
//! tooltip, the icon's state (idle / busy / something failed), a menu of the recent jobs and
//! the app's actions — with no runtime involved, so it is tested as it is. [`start`] keeps
//! one on screen and up to date from the engine's feeds (any process's jobs), recomputing only
//! when a job or approval changes: an idle app does no tray work at all.
//!
//! On Linux the item is a StatusNotifierItem of our own (ksni, over D-Bus) rather than Tauri's
//! tray: Tauri's goes through libayatana-appindicator, which has no tooltip (`set_tooltip` is a
//! no-op there), never reports a click on the icon, and exports nothing until a menu exists
//! (measured with Debian 12's 0.5.92; docs/desktop.md). Elsewhere the tray is not built yet.

use gatehouse_engine::{ApprovalRequest, Job, JobState, PoolStatus};

/// Recent jobs listed in the menu.
pub const RECENT: usize = 8;

/// What the icon says at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    /// Nothing running, nothing failed last.
    Idle,
    /// Jobs are running.
    Busy,
    /// The job that finished last failed: shown until one finishes well or it
    /// is retried.
    Failed,
}

/// A menu entry.
#[derive(Debug, Clone, PartialEq)]
pub enum TrayItem {
    /// A line of text that does nothing (the counts).
    Note(String),
    /// A command waiting for approval: opens the dialog.
    Approval { id: i64, label: String },
    /// A recent job: opens it in the jobs window.
    Job { id: i64, label: String },
    OpenChat,
    OpenJobs,
    /// Pause the pool (`true`) or resume it.
    Pause(bool),
    Quit,
    Separator,
}

impl TrayItem {
    /// The text the menu shows.
    pub fn label(&self) -> String {
        match self {
            TrayItem::Note(s) | TrayItem::Approval { label: s, .. } | TrayItem::Job { label: s, .. } => s.clone(),
            TrayItem::OpenChat => "Open chat".into(),
            TrayItem::OpenJobs => "Open jobs".into(),
            TrayItem::Pause(true) => "Pause the pool".into(),
            TrayItem::Pause(false) => "Resume the pool".into(),
            TrayItem::Quit => "Quit Gatehouse".into(),
            TrayItem::Separator => String::new(),
        }
    }
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq)]
pub struct TrayModel {
    pub state: TrayState,
    /// The tooltip's title.
    pub title: String,
    /// The tooltip's text: the counts, in words.
    pub summary: String,
    /// Commands are waiting for a person: the icon asks for attention.
    pub attention: bool,
    pub items: Vec<TrayItem>,
}

impl TrayModel {
    /// The tray for this pool, its newest jobs (newest first) and the pending approvals.
    pub fn of(status: &PoolStatus, recent: &[Job], approvals: &[ApprovalRequest]) -> TrayModel {
        let count = |s: &str| status.jobs.get(s).copied().unwrap_or(0);
        let (running, queued) = (count("running"), count("queued"));
        let last_finished = recent.iter().filter(|j| j.finished_at.is_some()).max_by_key(|j| (j.finished_at, j.id));
        let failed = last_finished.is_some_and(|j| j.state == JobState::Failed);
        let state = match (failed, running) {
            (true, _) => TrayState::Failed,
            (false, 0) => TrayState::Idle,
            _ => TrayState::Busy,
        };
        let mut summary = format!("{running} running, {queued} queued");
        if failed {
            summary.push_str(", the last job failed");
        }
        if !approvals.is_empty() {
            summary.push_str(&format!(", {} waiting for approval", approvals.len()));
        }
        if status.paused {
            summary.push_str(" (paused)");
        }
        let mut items = vec![TrayItem::Note(format!("{running} running · {queued} queued{}", if status.paused { " · paused" } else { "" }))];
        for a in approvals {
            items.push(TrayItem::Approval { id: a.id, label: format!("Approve? {}", short(&command_line(a))) });
        }
        if !recent.is_empty() {
            items.push(TrayItem::Separator);
        }
        for job in recent.iter().take(RECENT) {
            items.push(TrayItem::Job { id: job.id, label: format!("#{} {} — {}", job.id, job.state.as_str(), short(&job.title)) });
        }
        items.extend([
            TrayItem::Separator,
            TrayItem::OpenChat,
            TrayItem::OpenJobs,
            TrayItem::Pause(!status.paused),
            TrayItem::Separator,
            TrayItem::Quit,
        ]);
        TrayModel { state, title: "Gatehouse".into(), summary, attention: !approvals.is_empty(), items }
    }
}

/// The command an approval asks about, in one line, quoted as the engine shows commands.
fn command_line(a: &ApprovalRequest) -> String {
    gatehouse_engine::ExecSpec::new(a.program.as_str(), a.args.iter().map(String::as_str)).display()
}

/// `text` cut to a menu's width, on a character boundary, with control characters shown as spaces.
fn short(text: &str) -> String {
    const WIDTH: usize = 48;
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match clean.char_indices().nth(WIDTH) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean,
    }
}

/// The icon for a state, as ARGB32 pixels (network byte order), `size` × `size`: the app's mark
/// (a house on a rounded square) in the state's colour — blue idle, amber busy, red failed.
pub fn icon_pixels(state: TrayState, size: u32) -> Vec<u8> {
    let (r, g, b) = match state {
        TrayState::Idle => (0x18, 0x59, 0xc9),
        TrayState::Busy => (0xd9, 0x8e, 0x04),
        TrayState::Failed => (0xc6, 0x28, 0x28),
    };
    // The mark's outline on a 32-unit grid, as in ui/index.html's logo.
    const HOUSE: [(f32, f32); 9] = [(16.0, 7.0), (24.0, 13.0), (24.0, 24.0), (19.0, 24.0), (19.0, 18.0), (13.0, 18.0), (13.0, 24.0), (8.0, 24.0), (8.0, 13.0)];
    let scale = 32.0 / size as f32;
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = ((x as f32 + 0.5) * scale, (y as f32 + 0.5) * scale);
            let pixel = if !in_rounded_square(px, py) {
                [0, 0, 0, 0]
            } else if in_polygon(px, py, &HOUSE) {
                [0xff, 0xff, 0xff, 0xff]
            } else {
                [0xff, r, g, b]
            };
            out.extend_from_slice(&pixel);
        }
    }
    out
}

fn in_rounded_square(x: f32, y: f32) -> bool {
    const LO: f32 = 2.0;
    const HI: f32 = 30.0;
    const RADIUS: f32 = 7.0;
    if !(LO..=HI).contains(&x) || !(LO..=HI).contains(&y) {
        return false;
    }
    let cx = x.clamp(LO + RADIUS, HI - RADIUS);
    let cy = y.clamp(LO + RADIUS, HI - RADIUS);
    (x - cx).powi(2) + (y - cy).powi(2) <= RADIUS * RADIUS
}

/// Even-odd rule.
fn in_polygon(x: f32, y: f32, points: &[(f32, f32)]) -> bool {
    let mut inside = false;
    let mut j = points.len() - 1;
    for i in 0..points.len() {
        let ((xi, yi), (xj, yj)) = (points[i], points[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(target_os = "linux")]
pub use linux::start;

#[cfg(not(target_os = "linux"))]
/// No tray on this system yet (Tauri's tray-icon is the plan for Windows and macOS).
pub fn start<R: tauri::Runtime>(_app: tauri::AppHandle<R>, _engine: gatehouse_engine::Engine) {
    tracing::info!("the tray icon is not built for this system yet");
}

#[cfg(target_os = "linux")]
mod linux {
    use gatehouse_engine::{ApprovalEvent, Engine, JobFeed, JobFilter};
    use ksni::menu::{MenuItem, StandardItem};
    use ksni::{Icon, Status, ToolTip, TrayMethods};
    use tauri::{AppHandle, Runtime};

    use super::{icon_pixels, TrayItem, TrayModel, TrayState, RECENT};
    use crate::windows;

    /// Sizes the icon is offered in: the host picks the nearest.
    const SIZES: [u32; 3] = [16, 32, 64];

    struct Item<R: Runtime> {
        model: TrayModel,
        app: AppHandle<R>,
    }

    impl<R: Runtime> ksni::Tray for Item<R> {
        fn id(&self) -> String {
            "gatehouse".into()
        }

        fn title(&self) -> String {
            format!("Gatehouse: {}", self.model.summary)
        }

        fn status(&self) -> Status {
            if self.model.attention { Status::NeedsAttention } else { Status::Active }
        }

        fn icon_pixmap(&self) -> Vec<Icon> {
            SIZES.iter().map(|&s| Icon { width: s as i32, height: s as i32, data: icon_pixels(self.model.state, s) }).collect()
        }

        fn attention_icon_pixmap(&self) -> Vec<Icon> {
            SIZES.iter().map(|&s| Icon { width: s as i32, height: s as i32, data: icon_pixels(TrayState::Busy, s) }).collect()
        }

        fn tool_tip(&self) -> ToolTip {
            ToolTip { title: self.model.title.clone(), description: self.model.summary.clone(), ..Default::default() }
        }

        /// A click on the icon opens the main window.
        fn activate(&mut self, _x: i32, _y: i32) {
            windows::show_main(&self.app);
        }

        fn menu(&self) -> Vec<MenuItem<Self>> {
            self.model.items.iter().map(|item| entry(item)).collect()
        }
    }

    fn entry<R: Runtime>(item: &TrayItem) -> MenuItem<Item<R>> {
        // dbusmenu reads `_` as the access-key mark: a job's `my_script` must show as typed.
        let label = item.label().replace('_', "__");
        let act: Box<dyn Fn(&mut Item<R>) + Send> = match item.clone() {
            TrayItem::Separator => return MenuItem::Separator,
            TrayItem::Note(_) => return StandardItem { label, enabled: false, ..Default::default() }.into(),
            TrayItem::Approval { .. } => Box::new(|t: &mut Item<R>| windows::show_main(&t.app)),
            TrayItem::Job { id, .. } => Box::new(move |t: &mut Item<R>| windows::open_jobs(&t.app, Some(id))),
            TrayItem::OpenChat => Box::new(|t: &mut Item<R>| windows::show_main(&t.app)),
            TrayItem::OpenJobs => Box::new(|t: &mut Item<R>| windows::open_jobs(&t.app, None)),
            TrayItem::Pause(paused) => Box::new(move |t: &mut Item<R>| windows::pause_pool(&t.app, paused)),
            TrayItem::Quit => Box::new(|t: &mut Item<R>| windows::ask_quit(&t.app)),
        };
        StandardItem { label, activate: act, ..Default::default() }.into()
    }

    /// What the tray shows now, read from the engine.
    async fn model(engine: &Engine) -> gatehouse_engine::Result<TrayModel> {
        let status = engine.pool_status().await?;
        let recent = engine.jobs(&JobFilter { state: None, limit: Some(RECENT as i64) }).await?;
        let approvals = engine.approvals().await?;
        Ok(TrayModel::of(&status, &recent, &approvals))
    }

    /// Put the tray on the session bus and keep it current until the app exits. Without a
    /// session bus there is no tray (the app works the same); without a tray host yet, the item
    /// registers when one appears.
    pub fn start<R: Runtime>(app: AppHandle<R>, engine: Engine) {
        tauri::async_runtime::spawn(async move {
            let first = match model(&engine).await {
                Ok(m) => m,
                Err(e) => return tracing::warn!(error = %e, "no tray icon: the pool's state cannot be read"),
            };
            let handle = match (Item { model: first, app }).assume_sni_available(true).spawn().await {
                Ok(h) => h,
                Err(e) => return tracing::warn!(error = %e, "no tray icon (is there a D-Bus session?)"),
            };
            let (mut jobs, mut approvals) = match (engine.watch_jobs().await, engine.watch_approvals().await) {
                (Ok(j), Ok(a)) => (j, a),
                (Err(e), _) | (_, Err(e)) => return tracing::warn!(error = %e, "the tray icon will not follow the jobs"),
            };
            loop {
                // Only news that can change what the tray shows; output lines and progress cannot.
                tokio::select! {
                    event = jobs.next() => match event {
                        None => return,
                        Some(JobFeed::Output { .. } | JobFeed::Progress { .. }) => continue,
                        Some(_) => {}
                    },
                    event = approvals.next() => match event {
                        None => return,
                        Some(ApprovalEvent::Requested { .. } | ApprovalEvent::Resolved { .. } | ApprovalEvent::Expired { .. } | ApprovalEvent::Resync) => {}
                    },
                }
                match model(&engine).await {
                    Ok(next) => {
                        let changed = handle.update(|t| (t.model != next).then(|| t.model = next)).await;
                        if changed.is_none() {
                            return; // the tray's service has stopped
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the tray icon could not read the pool"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_the_mark_in_the_states_colour_with_a_clear_outside() {
        for state in [TrayState::Idle, TrayState::Busy, TrayState::Failed] {
            let px = icon_pixels(state, 32);
            assert_eq!(px.len(), 32 * 32 * 4);
            assert_eq!(&px[0..4], &[0, 0, 0, 0], "the corner is transparent");
            let at = |x: usize, y: usize| &px[(y * 32 + x) * 4..(y * 32 + x) * 4 + 4];
            assert_eq!(at(10, 16), &[0xff, 0xff, 0xff, 0xff], "the house is white");
            assert_eq!(at(16, 22)[0], 0xff, "its door shows the square");
            assert_ne!(at(16, 22)[1..], [0xff, 0xff, 0xff], "its door shows the square");
            assert_eq!(at(4, 16)[0], 0xff, "the square is opaque");
        }
        assert_ne!(icon_pixels(TrayState::Idle, 16), icon_pixels(TrayState::Failed, 16));
    }

    #[test]
    fn a_long_title_is_cut_on_a_character_boundary() {
        assert_eq!(short("echo\thi"), "echo hi");
        let cut = short(&"é".repeat(100));
        assert_eq!(cut.chars().count(), 49);
        assert!(cut.ends_with('…'));
    }
}
