"""vsm intelligence (S4): environment scanning, anomaly and variety detection, adaptation."""
