SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS received_at, clientid() AS client_id FROM 'dt/+/telemetry'
