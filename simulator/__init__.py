"""authhost's test tools: a terminal and switch simulator, a labelled traffic generator and a
load generator. They speak to authhost only over ISO 8583, as a real acquirer would."""
