"""Live progress while a run goes: a rich ``Live`` panel fed from the recorder.

The panel shows, per group, devices started / connected / connecting / failed, failures and
expected drops, and last-second rates (connects, messages sent and received); below, every
phase's completions and p99 over all groups.

It costs the engine nothing per measurement: nothing is pushed to it. rich's ``Live`` redraws
on its own thread (at most 4 times a second) and each redraw reads
:meth:`MetricsRecorder.live_view`, which copies a few dicts atomically. Percentiles are the
only expensive part (a walk over the histogram's buckets, ~1.5 ms a phase), so they are
recomputed at most every ``percentile_every_s`` seconds, and only for phases whose count
changed.

Switch it off for CI and pipes: by default it is on only when the console is an interactive
terminal (``enabled=None``); ``enabled=False`` turns it off whatever the console.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fleet_sim.metrics.formatting import format_latency
from fleet_sim.metrics.names import phase_sort_key
from fleet_sim.metrics.recorder import LiveView, MetricsRecorder

__all__ = ["MAX_REFRESH_PER_SECOND", "ProgressDisplay", "render_progress"]

#: The panel never redraws more often than this.
MAX_REFRESH_PER_SECOND = 4.0


#: Columns: devices started, connected now, connect attempts in flight, devices that gave up,
#: real failures, expected drops (first JITP/JITR connect), last-second rates.
_COLUMNS = (
    "group",
    "devices",
    "connected",
    "in flight",
    "failed",
    "failures",
    "drops",
    "conn/s",
    "sent/s",
    "recv/s",
)


def render_progress(
    view: LiveView, p99s: Mapping[str, float], *, title: str = "fleetsim"
) -> RenderableType:
    """One frame of the panel (pure: used by the display and by tests).

    Args:
        view: the recorder's live view.
        p99s: phase → p99 in seconds (phases missing here show ``…``).
        title: shown above the table with the elapsed time.
    """
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False, show_edge=False)
    for column in _COLUMNS:
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in view.groups:
        table.add_row(
            g.name,
            str(g.devices),
            f"{g.connected:g}",
            f"{g.connecting:g}",
            Text(str(g.devices_failed), style="red" if g.devices_failed else ""),
            Text(str(g.failures), style="red" if g.failures else ""),
            str(g.expected_drops),
            str(g.connects_per_s),
            str(g.sent_per_s),
            str(g.received_per_s),
        )
    phases = Text()
    for phase in sorted(view.phase_counts, key=phase_sort_key):
        count = view.phase_counts[phase]
        p99 = p99s.get(phase)
        shown = format_latency(p99) if p99 is not None else "…"
        if phases:
            phases.append("  ·  ")
        phases.append(f"{phase} ", style="bold")
        phases.append(f"n={count} p99={shown}")
    header = Text(f"{title}  ·  {view.elapsed_s:.0f}s elapsed", "bold")
    return Group(header, table, phases)


class ProgressDisplay:
    """The live panel; use as a context manager around the run.

    Args:
        recorder: the run's recorder.
        now: the run clock (the same one the engine passes to the recorder).
        console: where to draw (default: a rich Console on stderr, so stdout stays clean).
        enabled: True / False, or None for "only on an interactive terminal".
        refresh_per_second: redraws per second, capped at :data:`MAX_REFRESH_PER_SECOND`.
        percentile_every_s: how often p99s are recomputed.
        title: the panel's title (the scenario name).
    """

    def __init__(
        self,
        recorder: MetricsRecorder,
        *,
        now: Callable[[], float],
        console: Console | None = None,
        enabled: bool | None = None,
        refresh_per_second: float = MAX_REFRESH_PER_SECOND,
        percentile_every_s: float = 2.0,
        title: str = "fleetsim",
    ) -> None:
        self._recorder = recorder
        self._now = now
        self._console = console if console is not None else Console(stderr=True)
        if enabled is None:
            enabled = self._console.is_terminal and not self._console.is_dumb_terminal
        self.enabled = enabled
        self._refresh = max(0.1, min(refresh_per_second, MAX_REFRESH_PER_SECOND))
        self._percentile_every = percentile_every_s
        self._title = title
        self._p99s: dict[str, float] = {}
        self._counted: dict[str, int] = {}
        self._computed_at: float | None = None
        self._live: Live | None = None

    @property
    def refresh_per_second(self) -> float:
        """The redraw rate actually used."""
        return self._refresh

    def _update_percentiles(self, view: LiveView, now: float) -> None:
        due = self._computed_at is None or now - self._computed_at >= self._percentile_every
        if not due:
            return
        self._computed_at = now
        for phase, count in view.phase_counts.items():
            if count and self._counted.get(phase) != count:
                self._p99s[phase] = self._recorder.phase_histogram(phase).percentile(99.0)
                self._counted[phase] = count

    def render(self) -> RenderableType:
        """Read the recorder and draw one frame (called on rich's refresh thread)."""
        now = self._now()
        view = self._recorder.live_view(now)
        self._update_percentiles(view, now)
        return render_progress(view, self._p99s, title=self._title)

    def start(self) -> None:
        """Start drawing (nothing when disabled)."""
        if not self.enabled or self._live is not None:
            return
        self._live = Live(
            console=self._console,
            refresh_per_second=self._refresh,
            get_renderable=self.render,
            transient=False,
        )
        self._live.start()

    def stop(self) -> None:
        """Draw a last frame and stop."""
        live, self._live = self._live, None
        if live is not None:
            self._computed_at = None  # the last frame gets fresh percentiles
            live.refresh()
            live.stop()

    def __enter__(self) -> ProgressDisplay:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
