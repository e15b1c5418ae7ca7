"""Small modal dialogs: a yes/no confirm."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from .widgets import KeyBar


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "no", "Cancel"), Binding("y", "yes", "Yes", show=False),
                Binding("n", "no", "No", show=False)]

    def __init__(self, title: str, text: str = "", *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._title, self._text, self._yes, self._no = title, text, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]{self._title}[/b]", id="dialog-title")
            if self._text:
                yield Static(self._text, id="dialog-text")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self._yes} (y)", id="yes", variant="primary")
                yield Button(f"{self._no} (n)", id="no")
        # the dialog's own keys over the screen's footer (which would show the keys of the screen beneath)
        yield KeyBar([("y", "y", self._yes), ("n", "n", self._no)])  # Escape also answers no

    def on_mount(self) -> None:
        self.query_one("#yes").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class InputModal(ModalScreen[str | None]):
    """One value typed in, checked by ``check`` (a problem, or None when it fits) before it is taken."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str = "", *, value: str = "", check=None, placeholder: str = "") -> None:
        super().__init__()
        self._title, self._text, self._value, self._check, self._placeholder = title, text, value, check, placeholder

    def compose(self) -> ComposeResult:
        from textual.widgets import Input

        with Vertical(id="dialog"):
            yield Static(f"[b]{self._title}[/b]", id="dialog-title")
            if self._text:
                yield Static(self._text, id="dialog-text")
            yield Input(value=self._value, placeholder=self._placeholder, id="dialog-input", compact=True)
            yield Static("", id="dialog-problem")
        yield KeyBar([("enter", "Enter", "Use it"), ("escape", "Esc", "Cancel")])

    def on_mount(self) -> None:
        from textual.widgets import Input

        inp = self.query_one("#dialog-input", Input)
        inp.cursor_blink = not self.app.is_headless
        inp.focus()

    def on_input_submitted(self, event) -> None:
        event.stop()
        value = event.value.strip()
        problem = self._check(value) if self._check else None
        if problem:
            self.query_one("#dialog-problem", Static).update(f"[red]✘ {problem}[/red]")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LogModal(ModalScreen[None]):
    """A log in full, scrollable (the install screen's **l**): lines wrap at word boundaries under their time."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("l", "close", "Close", show=False),
                Binding("q", "close", "Close", show=False)]

    def __init__(self, title: str, lines: list[tuple[str, str]], *, log_path: str = "") -> None:
        super().__init__()
        self._title, self._lines, self._log_path = title, list(lines), log_path

    def compose(self) -> ComposeResult:
        from rich.text import Text
        from textual.containers import VerticalScroll

        body = Text()
        for i, (line, kind) in enumerate(self._lines):
            if i:
                body.append("\n")
            body.append(line, style={"error": "red", "warning": "yellow"}.get(kind, ""))
        if not self._lines:
            body.append("(nothing logged yet)", style="dim")
        with Vertical(id="dialog"):
            yield Static(f"[b]{self._title}[/b]" + (f"  [dim](debug log: {self._log_path})[/dim]"
                                                    if self._log_path else ""), id="dialog-title")
            with VerticalScroll(id="log-scroll"):
                yield Static(body, id="log-text")
        yield KeyBar([("escape", "Esc", "Close"), ("up", "↑↓ PgUp PgDn", "Scroll")])

    def on_mount(self) -> None:
        scroll = self.query_one("#log-scroll")
        scroll.focus()
        scroll.scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)


class HelpModal(ModalScreen[None]):
    """The keys of the screen beneath (``?``)."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("question_mark", "close", "Close", show=False),
                Binding("q", "close", "Close", show=False)]

    def __init__(self, rows: list[tuple[str, str]], title: str = "Keys") -> None:
        super().__init__()
        self._rows, self._title = rows, title

    def compose(self) -> ComposeResult:
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold", no_wrap=True)
        t.add_column()
        for key, what in self._rows:
            t.add_row(key, what)
        with Vertical(id="dialog"):
            yield Static(f"[b]{self._title}[/b]", id="dialog-title")
            yield Static(t, id="dialog-text")
        yield KeyBar([("escape", "Esc", "Close")])

    def action_close(self) -> None:
        self.dismiss(None)


class PickModal(ModalScreen[str | None]):
    """One of a few options (``(id, label)``), picked with the arrows and Enter; Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str, options: list[tuple[str, str]]) -> None:
        super().__init__()
        self._title, self._text, self._options = title, text, options

    def compose(self) -> ComposeResult:
        from textual.widgets import OptionList
        from textual.widgets.option_list import Option

        with Vertical(id="dialog"):
            yield Static(f"[b]{self._title}[/b]", id="dialog-title")
            if self._text:
                yield Static(self._text, id="dialog-text")
            yield OptionList(*(Option(label, id=oid) for oid, label in self._options), id="dialog-options")
        yield KeyBar([("enter", "Enter", "Pick"), ("escape", "Esc", "Cancel")])

    def on_mount(self) -> None:
        self.query_one("#dialog-options").focus()

    def on_option_list_option_selected(self, event) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

