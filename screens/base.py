"""The base of every wizard step: Back/Next keys, a title bar, and a hint line.

A step does not choose the next screen: it hands its result (a ``Move``) back to the app, whose one step
coroutine (``WizardApp._walk``) reads it and shows what comes next."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

if TYPE_CHECKING:  # pragma: no cover
    from .app import WizardApp


@dataclass(frozen=True)
class Move:
    """A step's result: ``to`` is "next", "back", or the name of a step to change and then return to the review
    from (the review's change keys)."""
    step: str
    to: str


class StepScreen(Screen):
    """One wizard step. Subclasses fill ``body()``; the app decides what comes next."""

    STEP = ""  # the app's step name
    AUTO_FOCUS = "#next"
    TITLE_TEXT = ""
    # set when the screen is composed, not changed after it is mounted: a change then lays the screen out again
    HINT = ""  # the keys this step offers, under its body
    BACK = True  # a Back button (the first step has nothing to go back to)
    NEXT_LABEL = "Next"
    # Enter is a priority binding so the footer always shows it (a focused Input, Button or list binds enter itself,
    # hidden, and would take its place); ``action_enter`` hands the key on to a focused widget that uses it
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "enter", "Next", priority=True),
    ]

    @property
    def wizard(self) -> "WizardApp":
        return self.app  # type: ignore[return-value]

    @property
    def state(self):
        return self.wizard.state

    def compose(self) -> ComposeResult:
        with Vertical(id="frame"):
            yield Static(self._header_text(), id="step-title")
            with Vertical(id="body"):
                yield from self.body()
            with Horizontal(id="nav"):
                yield Static(self.HINT, id="hint")
                back = Button("Back", id="back", variant="default")
                back.display = self.BACK
                yield back
                yield Button(self.NEXT_LABEL, id="next", variant="primary")
        yield Footer()

    def _header_text(self) -> str:
        steps = self.wizard.step_titles()
        names = list(steps)
        pos = f"{names.index(self.STEP) + 1}/{len(names)}  " if self.STEP in names else ""
        return f"[b]mlops-install[/b]  {pos}{self.TITLE_TEXT}"

    def body(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def action_enter(self) -> None:
        from textual.actions import SkipAction
        from textual.widgets import Input, OptionList, Select

        f = self.focused
        if isinstance(f, (Input, OptionList, Select)) or (isinstance(f, Button) and f.id != "next"):
            raise SkipAction()  # the focused widget's own Enter: submit an input, pick an option, press a button
        self.action_next()

    def action_back(self) -> None:
        self.move("back")

    def action_next(self) -> None:
        if self.commit():
            self.move("next")

    def move(self, to: str) -> None:
        """Hand this step's result back to the app's step coroutine (``WizardApp.moves``)."""
        self.wizard.moves.put_nowait(Move(self.STEP, to))

    def commit(self) -> bool:
        """Store this step's answers in the wizard state; False keeps the user here."""
        return True

