"""Sans-I/O cores: pure decisions over what happened and when, no threads, sockets or models.

The Twilio protocol, the playback clock and the phrase frames, turn taking, speech
turns, liveness, what may be spoken, the audio formats, and the call's policy.
Each takes observations (and the time) and returns what to do; the actors and the
gateway do it. A core imports only other cores, ``projections`` (pure folds) and ``events``.
"""
