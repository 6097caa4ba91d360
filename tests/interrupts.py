"""Interrupt the output swap of thermosynth.output.atomic at one step."""

import os

from thermosynth.output import atomic


def interrupt_replace(monkeypatch, fail_after: str) -> None:
    """Raise KeyboardInterrupt after the old output moved aside, or as it is deleted.

    ``fail_after`` is "aside" (the old output has moved to ``.NAME.old-*``) or
    "delete" (the new output is in place and the old one is being deleted).
    """
    real_replace, real_rmtree = os.replace, atomic.shutil.rmtree

    def replace(source, destination):
        real_replace(source, destination)
        if fail_after == "aside" and ".old-" in str(destination):
            raise KeyboardInterrupt

    def rmtree(path, *args, **kwargs):
        if fail_after == "delete" and ".old-" in str(path):
            raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(atomic.shutil, "rmtree", rmtree)
