-- The shop's schema and seed data. Applied at every service start, under GET_LOCK, so
-- every statement must be idempotent (CREATE ... IF NOT EXISTS, INSERT IGNORE).
-- Statements end with ';' at the end of a line; lines starting with '--' are comments.
-- The caller sets @flash_sale_stock (FLASH_SALE_STOCK) before running this file.

CREATE TABLE IF NOT EXISTS products (
  id          VARCHAR(64)  NOT NULL PRIMARY KEY,
  name        VARCHAR(200) NOT NULL,
  price_cents INT          NOT NULL,
  stock       INT          NOT NULL,
  updated_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT stock_not_negative CHECK (stock >= 0)
) ENGINE=InnoDB;

-- One row per accepted order. idempotency_key is UNIQUE: a retried POST /orders with the
-- same key finds the existing row instead of creating a second order. amount is in cents.
CREATE TABLE IF NOT EXISTS orders (
  id              VARCHAR(64)  NOT NULL PRIMARY KEY,
  idempotency_key VARCHAR(128) NOT NULL,
  product_id      VARCHAR(64)  NOT NULL,
  quantity        INT          NOT NULL,
  amount          BIGINT       NOT NULL,
  status          VARCHAR(32)  NOT NULL,
  payment_id      VARCHAR(64)  NULL,
  created_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY orders_idempotency_key (idempotency_key),
  KEY orders_created_at (created_at)
) ENGINE=InnoDB;

-- The transactional outbox: written in the order's transaction, published to Kafka by the
-- order service's relay, which sets sent_at once the broker acknowledged the event.
-- dropped = 1 marks rows the drop-events fault marked sent without publishing them.
CREATE TABLE IF NOT EXISTS outbox (
  id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id   VARCHAR(64)  NOT NULL,
  topic      VARCHAR(200) NOT NULL,
  payload    TEXT         NOT NULL,
  created_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  sent_at    DATETIME(6)  NULL,
  dropped    TINYINT      NOT NULL DEFAULT 0,
  KEY outbox_unsent (sent_at, id)
) ENGINE=InnoDB;

-- One row per order whose event the notification service consumed (exactly once: the
-- primary key plus INSERT IGNORE absorb redelivered events).
CREATE TABLE IF NOT EXISTS notifications (
  order_id        VARCHAR(64) NOT NULL PRIMARY KEY,
  kafka_partition INT         NULL,
  kafka_offset    BIGINT      NULL,
  created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

-- Switches shared by all replicas of a service (fault injection for tests).
CREATE TABLE IF NOT EXISTS shop_flags (
  name       VARCHAR(64) NOT NULL PRIMARY KEY,
  enabled    TINYINT     NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

INSERT IGNORE INTO shop_flags (name, enabled) VALUES ('drop_events', 0);

INSERT IGNORE INTO products (id, name, price_cents, stock) VALUES
  ('flash-1', 'Flash-sale headphones (limited stock)', 4999, @flash_sale_stock),
  ('sku-1', 'USB-C cable', 999, 100000000),
  ('sku-2', 'Mechanical keyboard', 8999, 100000000),
  ('sku-3', 'Wireless mouse', 2499, 100000000),
  ('sku-4', '27-inch monitor', 22999, 100000000),
  ('sku-5', 'Laptop stand', 3999, 100000000);
