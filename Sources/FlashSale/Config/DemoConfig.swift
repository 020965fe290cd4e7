extension SaleConfig {
    /// The source name of the built-in demo config, as errors and `sourceName` show it.
    public static let demoSourceName = "<built-in demo>"

    /// The config `flashsaled serve` runs with no `--config`: one live seckill event, one live
    /// group-buy and one coupon batch, so that a first run shows something (§2).
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
          ops: demo-ops-password
          admin: demo-admin-token-secret

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

extension SaleConfig {
    /// The secrets of the built-in demo config (and of the shipped `config/flashsale.yaml`):
    /// printed in the README, so known to everyone.
    public static let publicDemoSecrets: Set<String> = [
        "demo-user-token-secret", "demo-payment-secret", "demo-ops-password", "demo-admin-token-secret",
    ]

    /// Why this config must not serve: a public demo secret on a listener that is not loopback
    /// (anyone could mint buyer tokens, forge payments or restock); nil when it may.
    public var publicSecretsRefusal: String? {
        let exposed = [("http", http), ("ops", ops)].filter { !$0.1.isLoopback }
        guard let (name, address) = exposed.first else { return nil }
        let named = [
            ("secrets.user_token", secrets.userToken ?? ""), ("secrets.payment", secrets.payment), ("secrets.ops", secrets.ops),
            ("secrets.admin", secrets.admin ?? ""),
        ].filter { Self.publicDemoSecrets.contains($0.1) }.map(\.0)
        guard !named.isEmpty else { return nil }
        return "refusing to listen on \(address) (\(name)) with the public demo \(named.joined(separator: ", ")): "
            + "anyone could use them. Set your own (at least \(ConfigLimits.secretBytesMin) bytes each) in the config file "
            + "or in FLASHSALE_SECRETS_USER_TOKEN, FLASHSALE_SECRETS_PAYMENT, FLASHSALE_SECRETS_OPS and FLASHSALE_SECRETS_ADMIN, or listen on loopback only."
    }
}

extension HostPort {
    /// Whether only this machine can connect: `localhost`, 127.0.0.0/8 or `::1`.
    public var isLoopback: Bool {
        if host.lowercased() == "localhost" { return true }
        guard let address = ClientAddress(host) else { return false }
        return address.isLoopback
    }
}
