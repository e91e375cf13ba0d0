"""Monitoring: drift of scored days against the champion's training rows, and realized money once labels are known."""
