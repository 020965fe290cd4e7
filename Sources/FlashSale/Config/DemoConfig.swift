extension SaleConfig {
    /// The source name of the built-in demo config, as errors and `sourceName` show it.
    public static let demoSourceName = "<built-in demo>"

    /// The config `flashsaled serve` runs with no `--config`: one live seckill event, one live
    /// group-buy and one coupon batch, so that a first run shows something (contract §2).
    ///
    /// Its times are relative to the load time, so the demo is live whenever it starts. Its
    /// secrets are public: never serve it beyond loopback.
    public static let demoYAML = """
        # The built-in demo config: live from the moment it loads, for 24 hours.
        # Listeners, data directory and the rest are the defaults (127.0.0.1:8080, 127.0.0.1:7070, ./data).
        timezone: Asia/Shanghai

        # Demo values, known to everyone: set FLASHSALE_SECRETS_* or use a real config file.
        secrets:
          user_token: demo-user-token-secret
          payment: demo-payment-secret
          ops: demo-ops-secret

        payment:
          window: 15m
        group:
          window: 1h

        events:
          - id: demo
            kind: seckill
            starts_at: now-1m
            ends_at: now+24h
            items:
              - { sku: A1, name: Phone case, price: 990, stock: 100, limit_per_user: 2 }
              - { sku: B2, name: Earbuds, price: 4900, stock: 20, limit_per_user: 1 }
          - id: demo-group
            kind: groupbuy
            starts_at: now-1m
            ends_at: now+24h
            items:
              - { sku: G1, name: Tea set, price: 8800, group_price: 5900, group_size: 3, stock: 30 }

        coupons:
          - id: demo-coupon
            total: 100
            value: 500
            min_spend: 2000
            per_user: 1
            per_ip: 3
            starts_at: now-1m
            ends_at: now+24h
            valid_for: 24h
        """
}
