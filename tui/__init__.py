"""The Textual terminal UI: screens, widgets and styles over the core functions."""
