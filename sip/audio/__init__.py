"""The audio path between the agent's headset and pjsua2, and the WAV plumbing.

Public API: `AudioBridge` (sip.audio.bridge), `ByteRing` (sip.audio.ring); the recorder
lives in `sip.recorder`. Importing this package does not import pjsua2 or QtMultimedia;
import the submodules you need.
"""
