"""What the tests share, imported one way (``from tests.support.x import y``): processes they start
(``processes``), the engine harness and its worker (``engine_harness``, ``worker_app``), the fake workflow context
of the saga's unit tests (``fake_workflow``), an OTLP receiver (``otlp``), real-Dapr runs (``dapr_runs``), order
bodies (``orders``) and the fuzzer's hooks (``fuzz_hooks``)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
