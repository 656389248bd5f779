"""``alphapulse dashboard [--socket-dir DIR]``: the Textual terminal dashboard.

Panels: Market (latest pool state and recent swaps), Signals, Execution, P&L & Risk, Relay
health, and for the selected signal an inspector (its full profitability breakdown and path)
and an execution tracer (detected -> started -> result, with times and relay sequences).

Keys: ``s`` emergency stop, ``r`` resume (each asks for confirmation and a reason, then
publishes an ``EmergencyStop`` / ``Resume`` of scope ``all`` with sender ``dashboard@$USER`` on
the execution relay), ``enter`` on a signal or execution row inspects it, ``tab`` moves between
panels, ``q`` quits.

Data flow: a ``RelayWorker`` thread (trio) fills an ``Inbox``; a 10 Hz timer here drains it
into the ``DashboardModel`` and repaints only the panels the model marked changed, so a burst
of any size costs one repaint. Widgets only render ``views`` output; the model never imports
textual. Tests inject their own model, no worker and a ``publisher`` callback.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

from market.display import Registry
from protocol.system import EmergencyStop, Resume, StopScope
from protocol.tlv import TLV

from . import views
from .model import DashboardModel
from .relay_io import Inbox, RelayWorker, operator_name

Publisher = Callable[[TLV], None]

_TABLES = {
    "market": views.MARKET_COLUMNS,
    "swaps": views.SWAP_COLUMNS,
    "signals": views.SIGNAL_COLUMNS,
    "execution": views.EXECUTION_COLUMNS,
    "health": views.HEALTH_COLUMNS,
}


def sync_table(table: DataTable, rows: list[views.Row]) -> None:
    """Make ``table`` show ``rows`` (newest first): update cells in place when the row keys are
    unchanged, else rebuild. A table whose cursor is on its first row and that is not scrolled
    follows the newest rows (the cursor stays on top); once the user moves the cursor or scrolls,
    the cursor stays on the row they chose."""
    keys = [k for k, _ in rows]
    current = [r.key.value for r in table.ordered_rows]
    columns = [c.key for c in table.ordered_columns]
    if keys == current:
        for key, cells in rows:
            old = table.get_row(key)
            for col, (a, b) in enumerate(zip(old, cells)):
                if a != b:
                    table.update_cell(key, columns[col], b, update_width=True)
        return
    following = table.cursor_row <= 0 and table.scroll_y == 0
    selected = current[table.cursor_row] if current and 0 <= table.cursor_row < len(current) else None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if following or selected not in keys:
        table.move_cursor(row=0, animate=False)
        table.scroll_home(animate=False)
    else:
        table.move_cursor(row=keys.index(selected), animate=False)


class ConfirmDialog(ModalScreen[str | None]):
    """Asks "are you sure" with an editable reason; dismisses with the reason, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical { width: 72; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    ConfirmDialog Horizontal { height: auto; margin-top: 1; }
    ConfirmDialog Button { margin-right: 2; }
    """

    def __init__(self, question: str, default_reason: str, confirm_label: str) -> None:
        super().__init__()
        self.question = question
        self.default_reason = default_reason
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question")
            yield Label("Reason (enter confirms, escape cancels):")
            yield Input(value=self.default_reason, id="reason")
            with Horizontal():
                yield Button(self.confirm_label, id="confirm", variant="error")
                yield Button("Cancel", id="cancel")

    def _reason(self) -> str:
        return self.query_one("#reason", Input).value.strip() or self.default_reason

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self._reason() if event.button.id == "confirm" else None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(self._reason())

    def action_cancel(self) -> None:
        self.dismiss(None)


class DashboardApp(App[int]):
    TITLE = "AlphaPulse"
    CSS = """
    #grid { layout: grid; grid-size: 3 3; grid-columns: 5fr 5fr 4fr; grid-rows: 5fr 3fr 3fr; }
    .panel { border: round $primary; border-title-color: $accent; height: 100%; }
    #inspector-panel, #tracer-panel { row-span: 2; }
    DataTable { height: 1fr; }
    #swaps { height: 7; }
    """
    BINDINGS = [
        Binding("s", "stop", "Emergency stop"),
        Binding("r", "resume", "Resume"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        model: DashboardModel | None = None,
        *,
        socket_dir: str | None = None,
        publisher: Publisher | None = None,
        worker: RelayWorker | None = None,
        start_worker: bool = True,
        refresh_interval: float = 0.1,
        max_messages_per_tick: int = 20_000,
        sender: str | None = None,
        clock: Callable[[], int] = time.time_ns,
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        self.model = model if model is not None else DashboardModel()
        self.registry = registry if registry is not None else Registry()
        self.inbox = worker.inbox if worker is not None else Inbox()
        if worker is None and start_worker and publisher is None:
            worker = RelayWorker(socket_dir, self.inbox)
        self.worker = worker
        self.publisher: Publisher = publisher if publisher is not None else self._publish_via_worker
        self.refresh_interval = refresh_interval
        # bounds the time one tick can freeze the UI after a backlog (~0.1 s at the model's
        # measured rate); 10 ticks/s x 20k = 200k msgs/s of drain, and the inbox sheds beyond
        self.max_messages_per_tick = max_messages_per_tick
        self.sender = sender or operator_name()
        self.clock = clock
        self.selected_signal: int | None = None
        self.repaints = 0

    # ---- layout ----

    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="grid"):
            with Vertical(id="market-panel", classes="panel"):
                yield DataTable(id="market", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="swaps", cursor_type="row")
            with Vertical(id="signals-panel", classes="panel"):
                yield DataTable(id="signals", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="pnl-panel", classes="panel"):
                yield Static(id="pnl")
            with Vertical(id="execution-panel", classes="panel"):
                yield DataTable(id="execution", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="inspector-panel", classes="panel"):
                yield Static(views.inspector_text(self.model, None), id="inspector")
            with VerticalScroll(id="tracer-panel", classes="panel"):
                yield Static(views.tracer_text(self.model, None), id="tracer")
            with Vertical(id="health-panel", classes="panel"):
                yield DataTable(id="health", cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        titles = {
            "market-panel": "Market", "signals-panel": "Signals", "pnl-panel": "P&L & Risk",
            "execution-panel": "Execution", "inspector-panel": "Signal inspector",
            "health-panel": "Relay health", "tracer-panel": "Execution tracer",
        }
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        for tid, cols in _TABLES.items():
            table = self.query_one(f"#{tid}", DataTable)
            for c in cols:
                table.add_column(c, key=c)
        self.repaint(set(("market", "signals", "execution", "pnl", "risk", "health")))
        if self.worker is not None:
            self.worker.start()
        self.set_interval(self.refresh_interval, self.tick)

    def on_unmount(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    # ---- the refresh loop ----

    def tick(self) -> None:
        """Drain the inbox into the model; repaint what changed (bursts collapse here)."""
        if not self.is_running:
            # shutting down: Textual clears ``is_running`` first, then removes the screens while this
            # interval timer can still fire; a repaint then would query widgets that are gone
            return
        model = self.model
        for item in self.inbox.drain(self.max_messages_per_tick):
            kind = item[0]
            if kind == "msgs":
                _, domain, msgs, now_ns = item
                on_message = model.on_message
                for m in msgs:
                    on_message(domain, m, now_ns)
            elif kind == "status":
                model.on_relay_status(item[1], now_ns=self.clock(), **item[2])
            elif kind == "notice":
                model.notice(item[1], item[2])
                self.notify(item[1], severity="warning" if "NOT" in item[1] else "information")
        model.on_tick(self.clock())
        if model.dirty:
            self.repaint(model.take_changes())

    def repaint(self, changed: set[str]) -> None:
        model, reg = self.model, self.registry
        self.repaints += 1
        if "market" in changed:
            sync_table(self.query_one("#market", DataTable), views.market_rows(model, reg=reg))
            sync_table(self.query_one("#swaps", DataTable), views.swap_rows(model, reg=reg))
            self.query_one("#market-panel").border_subtitle = views.chain_heads_text(model)
        if "signals" in changed:
            sync_table(self.query_one("#signals", DataTable), views.signal_rows(model, reg=reg))
        if "execution" in changed:
            sync_table(self.query_one("#execution", DataTable), views.execution_rows(model, reg=reg))
        if changed & {"pnl", "risk", "health", "market"}:  # "market": the quote currency follows pool prices
            self.query_one("#pnl", Static).update(views.pnl_risk_text(model, reg))
        if "health" in changed:
            sync_table(self.query_one("#health", DataTable), views.health_rows(model))
        if changed & {"signals", "execution"}:
            self._repaint_inspector()
        self.sub_title = self._status_line()

    def _repaint_inspector(self) -> None:
        reg = self.registry
        self.query_one("#inspector", Static).update(views.inspector_text(self.model, self.selected_signal, reg))
        self.query_one("#tracer", Static).update(views.tracer_text(self.model, self.selected_signal, reg))

    def _status_line(self) -> str:
        if self.model.halted:
            return "HALTED"
        return views.data_state(self.model) or "trading"

    # ---- selection ----

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value or ""
        prefix, _, sid = key.partition("-")
        if prefix in ("sig", "exe") and sid.isdigit():
            self.select_signal(int(sid))

    def select_signal(self, signal_id: int | None) -> None:
        self.selected_signal = signal_id
        self._repaint_inspector()

    # ---- emergency stop / resume ----

    def action_stop(self) -> None:
        self.push_screen(
            ConfirmDialog("Publish an EmergencyStop (scope ALL) on the execution relay?",
                          "operator stop from the dashboard", "Stop trading"),
            self._confirmed_stop,
        )

    def action_resume(self) -> None:
        self.push_screen(
            ConfirmDialog("Publish a Resume (scope ALL, every stop) on the execution relay?",
                          "operator resume from the dashboard", "Resume trading"),
            self._confirmed_resume,
        )

    def _confirmed_stop(self, reason: str | None) -> None:
        if reason is None:
            self.notify("emergency stop cancelled")
            return
        stop_id = self.clock() // 1000  # like risk.cli: operator ids far above the risk process's counter
        self._send(EmergencyStop(scope=int(StopScope.ALL), scope_value=0, stop_id=stop_id, reason=reason,
                                 sender=self.sender))

    def _confirmed_resume(self, reason: str | None) -> None:
        if reason is None:
            self.notify("resume cancelled")
            return
        self._send(Resume(scope=int(StopScope.ALL), scope_value=0, stop_id=0, reason=reason, sender=self.sender))

    def _send(self, tlv: TLV) -> None:
        self.publisher(tlv)
        self.model.notice(f"{type(tlv).__name__} sent by {self.sender}: {getattr(tlv, 'reason', '')}", self.clock())
        self.repaint({"risk"})

    def _publish_via_worker(self, tlv: TLV) -> None:
        if self.worker is None:
            self.model.notice(f"{type(tlv).__name__} NOT published: no relay worker", self.clock())
            return
        self.worker.publish(tlv)


def build_parser() -> argparse.ArgumentParser:
    from runtime.paths import run_dir

    p = argparse.ArgumentParser(prog="alphapulse dashboard",
                                description="Terminal dashboard: market, signals, execution, P&L, risk, relay health.")
    p.add_argument("--socket-dir", default=None,
                   help=f"directory of the relays' sockets (default: $ALPHAPULSE_RUN_DIR or {run_dir()})")
    p.add_argument("--quote", default="", help="quote currency: a stablecoin's symbol in the deployment (default "
                                               "$ALPHAPULSE_QUOTE or USDC, shown as USD); 'none' for none")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tools.registry import load_registry

    quote = None if args.quote.lower() == "none" else args.quote
    app = DashboardApp(socket_dir=args.socket_dir, registry=load_registry(cache=None, quote=quote))
    result = app.run()
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
