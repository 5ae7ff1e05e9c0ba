"""Engines: the models a call uses, loaded once per process and shared by every call.

VAD (silero), STT (faster-whisper), TTS (hibari, Sesame CSM), the LLM client and its
endpoints, and the cache of lines rendered once. An engine imports cores and
``events`` (and projections), never an actor: a new engine goes here, behind the interface its stage
already uses (``SpeechEngine``, ``WhisperEngine``, ``LlmEndpoints``).
"""
