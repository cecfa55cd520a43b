-- Filament notifications take the dotted names used everywhere else (API, /ws, webhooks,
-- channels, MQTT): filament_low -> filament.low, filament_runout -> filament.runout.
UPDATE notifications SET kind = 'filament.low' WHERE kind = 'filament_low';

UPDATE notifications SET kind = 'filament.runout' WHERE kind = 'filament_runout';

-- Messages not yet delivered carry the notification in their payload: same names there.
UPDATE outbox SET payload = REPLACE(payload, '"kind": "filament_low"', '"kind": "filament.low"')
WHERE state = 'pending';

UPDATE outbox
SET payload = REPLACE(payload, '"kind": "filament_runout"', '"kind": "filament.runout"')
WHERE state = 'pending';
