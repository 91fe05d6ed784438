-- The databases of a trial cluster, made once when the volume is new: one per service (each app migrates its own
-- at start) and Dapr's workflow store, which belongs to no service.
CREATE DATABASE order_api;
CREATE DATABASE payment;
CREATE DATABASE inventory;
CREATE DATABASE shipping;
CREATE DATABASE notification;
CREATE DATABASE dapr_workflows;
