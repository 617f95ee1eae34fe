SELECT * FROM '$aws/events/presence/+/+'
