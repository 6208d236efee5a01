"""An emulator of the Azure OpenAI Files + Batches data plane (SPEC §6): a real HTTP service, or in-process."""

from aoai_batch.emulator.clock import Clock, FakeClock, SystemClock
from aoai_batch.emulator.service import Emulator

__all__ = ["Clock", "Emulator", "FakeClock", "SystemClock"]
