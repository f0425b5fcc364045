"""The shared test Prometheus, plus target removal for pods that go away."""

from __future__ import annotations

import urllib.error
import urllib.request

from tests.support.prometheus import PrometheusServer

__all__ = ["LocalPrometheus"]


class LocalPrometheus(PrometheusServer):
    """A PrometheusServer whose targets also leave when the pods behind them stop.

    A stopped pod's port may be handed to a later pod; a stale target would then attach
    the old pod's labels to the new pod's series.
    """

    def remove_target(self, address: str) -> None:
        """Stop scraping ``address``; reloads a running server's config."""
        kept = [t for t in self.targets if t.address != address]
        if len(kept) == len(self.targets):
            return
        self.targets = kept
        if not self.running():
            return
        self._write_config()
        request = urllib.request.Request(self.url + "/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10.0):
                pass
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"prometheus rejected the new config: {exc.read().decode(errors='replace')}") from exc
