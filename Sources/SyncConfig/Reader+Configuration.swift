import KongGateway
import LDAPDirectory
import SCIMDirectory
import SyncCore
import Yams

extension Reader {
    static let topKeys = ["version", "source", "gateways", "policy", "journal", "metrics", "watch"]
    static let watchKeys = ["tick", "resync_interval", "max_disable_per_hour", "poll_interval"]
    static let ldapKeys = [
        "type", "url", "ca_file", "start_tls", "bind_dn", "bind_password", "bind_password_file", "base_dn", "filter",
        "page_size", "id_attribute", "username_attribute", "disabled_filter", "timeout", "read_deadline", "allow_insecure",
    ]
    static let scimKeys = [
        "type", "url", "token", "token_file", "username", "password", "password_file", "filter", "page_size",
        "id_attribute", "username_attribute", "timeout", "read_deadline", "ca_file", "retries", "allow_insecure",
    ]
    static let gatewayKeys = [
        "name", "type", "admin_url", "token", "token_file", "ca_file", "client_cert", "client_key", "select_tags",
        "match", "timeout", "read_deadline", "concurrency", "retries", "allow_insecure", "workspace",
        "control_plane_id", "region", "api_url",
    ]
    static let policyKeys = [
        "grace_period", "disabled_grace_period", "on_missing", "max_disable", "max_disable_percent", "min_users",
        "max_shrink_percent", "protected", "delete_credentials",
    ]

    static let workspaceCharacters = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~".unicodeScalars)

    /// Per request or operation: 1s to 24h.
    static let timeoutRange: ClosedRange<Int64> = 1...86_400
    /// A whole listing (source or gateway): 1s to 7d, 15m by default.
    static let readDeadlineRange: ClosedRange<Int64> = 1...604_800
    static let defaultReadDeadline: Int64 = 900
    /// Grace periods: 0s to 100 years (36500d); larger ones could not be added to a clock.
    static let graceRange: ClosedRange<Int64> = 0...3_153_600_000

    mutating func configuration(_ root: Node?) -> SyncConfiguration? {
        guard let root else {
            problem("", "the file is empty")
            return nil
        }
        guard let top = mapping(root, "", allowed: Self.topKeys) else { return nil }
        let version = int(top, "version", "", default: 0, range: 0...Int.max)
        if top["version"] == nil {
            problem("version", "is required (version: 1)")
        } else if version != 1 && top["version"]?.int != nil {
            problem("version", "must be 1")
        }
        let source = self.source(top["source"])
        let gateways = self.gateways(top["gateways"])
        let policy = self.policy(top["policy"])
        var journalPath: String? = nil
        if let journal = mapping(top["journal"], "journal", allowed: ["path"]) {
            journalPath = string(journal, "path", "journal", required: true)
        } else if top["journal"] == nil {
            problem("journal.path", "is required")
        }
        var metricsPath: String? = nil
        if let metrics = mapping(top["metrics"], "metrics", allowed: ["textfile_path"]) {
            metricsPath = string(metrics, "textfile_path", "metrics")
            if let m = metricsPath, !m.hasSuffix(".prom") {
                problem("metrics.textfile_path", "must end in .prom (node_exporter reads only those)")
            }
        }
        var watch = WatchConfiguration(maxDisablePerHour: policy.maxDisable)
        if let map = mapping(top["watch"], "watch", allowed: Self.watchKeys) {
            watch.tickSeconds = duration(map, "tick", "watch", default: watch.tickSeconds, range: 1...86_400)
            watch.resyncSeconds = duration(map, "resync_interval", "watch", default: watch.resyncSeconds, range: 60...604_800)
            watch.pollSeconds = duration(map, "poll_interval", "watch", default: watch.pollSeconds, range: 1...3600)
            watch.maxDisablePerHour = int(map, "max_disable_per_hour", "watch", default: watch.maxDisablePerHour, range: 0...Int.max)
        }
        guard let source, let journalPath, !gateways.isEmpty else { return nil }
        var configuration = SyncConfiguration(
            version: version, source: source, gateways: gateways, policy: policy, journalPath: journalPath,
            metricsTextfilePath: metricsPath)
        configuration.watch = watch
        return configuration
    }

    mutating func source(_ node: Node?) -> SyncConfiguration.Source? {
        guard let node else {
            problem("source", "is required")
            return nil
        }
        guard case .mapping = node else {
            problem("source", "must be a mapping")
            return nil
        }
        let type = node["type"]?.string
        switch type {
        case "ldap":
            guard let map = mapping(node, "source", allowed: Self.ldapKeys) else { return nil }
            return ldap(map)
        case "scim":
            guard let map = mapping(node, "source", allowed: Self.scimKeys) else { return nil }
            return scim(map)
        case nil:
            problem("source.type", "is required (ldap or scim)")
            return nil
        case let other?:
            problem("source.type", "'\(other)' is not a source type; use ldap or scim")
            return nil
        }
    }

    mutating func ldap(_ map: [String: Node]) -> SyncConfiguration.Source? {
        let p = "source"
        let url = string(map, "url", p, required: true)
        if let url, !(url.hasPrefix("ldap://") || url.hasPrefix("ldaps://")) {
            problem("source.url", "must start with ldap:// or ldaps://")
        }
        let startTLS = bool(map, "start_tls", p)
        if startTLS, url?.hasPrefix("ldaps://") == true {
            problem("source.start_tls", "cannot be combined with an ldaps:// url")
        }
        let password = secret(map, "bind_password", p)
        let bindDN = string(map, "bind_dn", p)
        if loader.readSecrets, bindDN != nil && password == nil && map["bind_password"] == nil
            && map["bind_password_file"] == nil
        {
            problem("source.bind_password_file", "is required with bind_dn (or bind_password: ${VAR})")
        }
        let allowInsecure = bool(map, "allow_insecure", p)
        if let url, url.hasPrefix("ldap://"), !startTLS, password != nil, !allowInsecure, !Self.isLoopback(url: url) {
            problem(
                "source.url",
                "would send the bind password in cleartext to a non-loopback host; use ldaps://, start_tls: true, or set allow_insecure: true"
            )
        }
        let baseDN = string(map, "base_dn", p, required: true)
        let filter = string(map, "filter", p) ?? "(objectClass=inetOrgPerson)"
        let config = LDAPSettings(
            url: url ?? "", bindDN: bindDN, bindPassword: password, baseDN: baseDN ?? "", filter: filter,
            pageSize: int(map, "page_size", p, default: 500, range: 1...100_000),
            idAttribute: string(map, "id_attribute", p) ?? "entryUUID",
            usernameAttribute: string(map, "username_attribute", p) ?? "uid",
            disabledFilter: string(map, "disabled_filter", p),
            timeoutSeconds: Int(duration(map, "timeout", p, default: 30, range: Self.timeoutRange)),
            caFile: string(map, "ca_file", p), startTLS: startTLS,
            readDeadlineSeconds: Int(duration(map, "read_deadline", p, default: Self.defaultReadDeadline, range: Self.readDeadlineRange)))
        return .ldap(config)
    }

    mutating func scim(_ map: [String: Node]) -> SyncConfiguration.Source? {
        let p = "source"
        let url = string(map, "url", p, required: true) ?? ""
        if !url.isEmpty && !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            problem("source.url", "must start with https:// (or http:// on loopback)")
        }
        let token = secret(map, "token", p, forHeader: true)
        let username = string(map, "username", p)
        let password = secret(map, "password", p, forHeader: true)
        if let username, username.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == ":" }) {
            problem("source.username", "must not contain ':' or control characters (basic auth)")
        }
        if token != nil && username != nil { problem("source.username", "give either a token or username + password, not both") }
        if username != nil && password == nil && loader.readSecrets {
            problem("source.password_file", "is required with username (or password: ${VAR})")
        }
        let allowInsecure = bool(map, "allow_insecure", p)
        if url.hasPrefix("http://"), token != nil || password != nil, !allowInsecure, !Self.isLoopback(url: url) {
            problem(
                "source.url",
                "would send the SCIM credentials in cleartext to a non-loopback host; use https:// or set allow_insecure: true")
        }
        let idAttribute = string(map, "id_attribute", p) ?? "id"
        if idAttribute != "id" && idAttribute != "externalId" { problem("source.id_attribute", "must be id or externalId") }
        let filter = string(map, "filter", p)
        if let filter, filter.split(whereSeparator: { !$0.isLetter }).contains(where: { $0.lowercased() == "active" }) {
            problem("source.filter", "must not filter on active: deactivated users would look missing instead of deactivated")
        }
        let timeout = duration(map, "timeout", p, default: 30, range: Self.timeoutRange)
        let deadline = duration(map, "read_deadline", p, default: Self.defaultReadDeadline, range: Self.readDeadlineRange)
        let auth: SCIMSettings.Auth
        if let token {
            auth = .bearer(token)
        } else if let username {
            auth = .basic(username: username, password: password ?? "")
        } else {
            auth = .none
        }
        return .scim(
            SCIMSettings(
                url: url, auth: auth, filter: filter, pageSize: int(map, "page_size", p, default: 100, range: 1...1000),
                idAttribute: idAttribute, usernameAttribute: string(map, "username_attribute", p) ?? "userName",
                timeoutSeconds: Int(timeout), caFile: string(map, "ca_file", p),
                retries: int(map, "retries", p, default: 3, range: 0...10), readDeadlineSeconds: Int(deadline)))
    }

    mutating func gateways(_ node: Node?) -> [SyncConfiguration.Gateway] {
        guard let node else {
            problem("gateways", "is required (at least one Kong gateway)")
            return []
        }
        guard case .sequence(let sequence) = node, !sequence.isEmpty else {
            problem("gateways", "must be a non-empty list")
            return []
        }
        var result: [SyncConfiguration.Gateway] = []
        var names: Set<String> = []
        for (i, item) in sequence.enumerated() {
            let p = "gateways[\(i)]"
            guard let map = mapping(item, p, allowed: Self.gatewayKeys) else { continue }
            let name = string(map, "name", p, required: true) ?? ""
            if !name.isEmpty && !names.insert(name).inserted { problem("\(p).name", "'\(name)' is used twice") }
            let type = string(map, "type", p) ?? "kong"
            if type != "kong" && type != "konnect" { problem("\(p).type", "must be kong or konnect") }
            var konnect: KongSettings.Konnect? = nil
            var url = ""
            var urlKey = "admin_url"
            if type == "konnect" {
                urlKey = "api_url"
                for key in ["admin_url", "workspace"] where map[key] != nil {
                    problem("\(p).\(key)", "does not apply to type konnect (use control_plane_id with region or api_url)")
                }
                let plane = string(map, "control_plane_id", p, required: true) ?? ""
                let region = string(map, "region", p)
                if let region, !KongSettings.Konnect.regions.contains(region) {
                    problem("\(p).region", "'\(region)' must be one of \(KongSettings.Konnect.regions.joined(separator: ", "))")
                }
                switch (region, string(map, "api_url", p)) {
                case (nil, nil): problem("\(p).region", "give region (us, eu, au, me, in) or api_url")
                case (.some, .some): problem("\(p).api_url", "give region or api_url, not both")
                case (let region?, nil): url = KongSettings.Konnect.url(region: region)
                case (nil, let api?): url = api
                }
                if map["token"] == nil && map["token_file"] == nil {
                    problem("\(p).token_file", "is required for konnect (a personal or system access token)")
                }
                if !plane.isEmpty, !plane.unicodeScalars.allSatisfy(Self.workspaceCharacters.contains) {
                    problem("\(p).control_plane_id", "'\(plane)' is not a control plane id")
                }
                konnect = KongSettings.Konnect(controlPlaneID: plane, apiURL: url)
            } else {
                for key in ["control_plane_id", "region", "api_url"] where map[key] != nil {
                    problem("\(p).\(key)", "only applies to type konnect")
                }
                url = string(map, "admin_url", p, required: true) ?? ""
            }
            if !url.isEmpty && !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                problem("\(p).\(urlKey)", "must start with http:// or https://")
            }
            let token = secret(map, "token", p, forHeader: true)
            let allowInsecure = bool(map, "allow_insecure", p)
            if url.hasPrefix("http://"), token != nil, !allowInsecure, !Self.isLoopback(url: url) {
                problem(
                    "\(p).\(urlKey)",
                    "would send the admin token in cleartext to a non-loopback host; use https:// or set allow_insecure: true")
            }
            let tags = stringList(map, "select_tags", p)
            if tags == nil && map["select_tags"] == nil { problem("\(p).select_tags", "is required (1 to 5 tags)") }
            if let tags {
                if tags.isEmpty || tags.count > 5 { problem("\(p).select_tags", "must list 1 to 5 tags") }
                for (j, tag) in tags.enumerated() where tag.isEmpty || tag.contains(",") || tag.contains("/") {
                    problem("\(p).select_tags[\(j)]", "a Kong tag must be non-empty and contain no ',' or '/'")
                }
            }
            let workspace = string(map, "workspace", p)
            if let workspace, workspace.isEmpty || !workspace.unicodeScalars.allSatisfy(Self.workspaceCharacters.contains) {
                problem("\(p).workspace", "'\(workspace)' is not a Kong workspace name (letters, digits, '.', '-', '_', '~')")
            }
            var match = MatchRule.recommended
            if let m = mapping(map["match"], "\(p).match", allowed: ["consumer", "user"]) {
                let consumer = string(m, "consumer", "\(p).match", required: true)
                let user = string(m, "user", "\(p).match", required: true)
                switch (consumer, user) {
                case ("custom_id", "id"): match = MatchRule(consumer: .customID, user: .id)
                case ("username", "username"): match = MatchRule(consumer: .username, user: .username)
                case ("custom_id", "username"): match = MatchRule(consumer: .customID, user: .username)
                case ("username", "id"): match = MatchRule(consumer: .username, user: .id)
                case (nil, _), (_, nil): break
                default:
                    problem("\(p).match", "consumer must be custom_id or username, user must be id or username")
                }
            }
            let timeout = duration(map, "timeout", p, default: 30, range: Self.timeoutRange)
            let deadline = duration(map, "read_deadline", p, default: Self.defaultReadDeadline, range: Self.readDeadlineRange)
            result.append(
                .kong(
                    KongSettings(
                        name: name, adminURL: url, token: token, selectTags: tags ?? [], timeoutSeconds: Int(timeout),
                        caFile: string(map, "ca_file", p), clientCert: string(map, "client_cert", p),
                        clientKey: string(map, "client_key", p), retries: int(map, "retries", p, default: 3, range: 0...10),
                        concurrency: int(map, "concurrency", p, default: 8, range: 1...64), readDeadlineSeconds: Int(deadline),
                        workspace: workspace, konnect: konnect),
                    match: match))
        }
        return result
    }

    mutating func policy(_ node: Node?) -> Policy {
        var policy = Policy()
        guard let node, let map = mapping(node, "policy", allowed: Self.policyKeys) else { return policy }
        let p = "policy"
        policy.gracePeriod = duration(map, "grace_period", p, default: policy.gracePeriod, range: Self.graceRange)
        policy.disabledGracePeriod = duration(
            map, "disabled_grace_period", p, default: policy.disabledGracePeriod, range: Self.graceRange)
        if let text = string(map, "on_missing", p) {
            if let value = OnMissing(rawValue: text) {
                policy.onMissing = value
            } else {
                problem("policy.on_missing", "'\(text)' must be one of flag, disable, delete-keys")
            }
        }
        policy.maxDisable = int(map, "max_disable", p, default: policy.maxDisable, range: 0...Int.max)
        policy.maxDisablePercent = double(map, "max_disable_percent", p, default: policy.maxDisablePercent)
        policy.minUsers = int(map, "min_users", p, default: policy.minUsers, range: 0...Int.max)
        policy.maxShrinkPercent = double(map, "max_shrink_percent", p, default: policy.maxShrinkPercent)
        policy.protected = stringList(map, "protected", p) ?? []
        if let types = stringList(map, "delete_credentials", p) {
            let known = CredentialRef.types
            for type in types where !known.contains(type) {
                problem("policy.delete_credentials", "'\(type)' is not a credential type; use \(known.joined(separator: ", "))")
            }
            if Set(types).count != types.count { problem("policy.delete_credentials", "names a type twice") }
            if !types.isEmpty && policy.onMissing != .deleteKeys {
                problem(
                    "policy.delete_credentials",
                    "only takes effect with on_missing: delete-keys (it names what the delete step removes)")
            }
            policy.deleteCredentials = types
        }
        return policy
    }

    /// True when the URL's host is 127.0.0.0/8, ::1 or localhost.
    static func isLoopback(url: String) -> Bool {
        guard let schemeEnd = url.range(of: "://") else { return false }
        var rest = url[schemeEnd.upperBound...]
        if let at = rest.firstIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let host: Substring
        if rest.hasPrefix("[") {
            host = rest.dropFirst().prefix { $0 != "]" }
        } else {
            host = rest.prefix { $0 != ":" && $0 != "/" && $0 != "?" }
        }
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }
}
