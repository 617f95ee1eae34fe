SELECT topic(3) AS device_id, current.state.reported AS reported FROM '$aws/things/+/shadow/update/documents'
