import ArgumentParser
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync explain`: why does this key fail with "invalid user associated with this key"?
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain one key or consumer: gateway state, directory state, journal history, what to do.",
        discussion: """
            The key is read from standard input (--key -), never from the command line: it is \
            fingerprinted at once, looked up in the journal, and compared with the gateway's keys locally.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "'-' to read the key from standard input.")
    var key: String?

    @Option(name: .long, help: "A consumer's id, username or custom_id.")
    var consumer: String?

    @Option(name: .long, help: "text or json.")
    var output: OutputFormat = .text

    @OptionGroup var logOptions: LogOptions

    func validate() throws {
        guard (key == nil) != (consumer == nil) else { throw ValidationError("give exactly one of --key - and --consumer NAME") }
        if let key, key != "-" {
            throw ValidationError("--key takes '-' and reads the key from standard input, so it never shows up in ps or shell history")
        }
    }

    func run() async throws {
        let logger = logOptions.logger()
        let config = try options.loadOrExit()
        var fingerprint: String? = nil
        if key != nil {
            var line = readLine(strippingNewline: true) ?? ""
            while line.last == "\r" || line.last == " " { line.removeLast() }
            guard !line.isEmpty else { throw ValidationError("no key on standard input") }
            fingerprint = KeyFingerprint.of(line)
            line = ""
        }

        let gateways = LiveAdapters.gateways(config, logger: logger)
        var found: (gateway: any Gateway, consumer: Consumer)? = nil
        var problems: [String] = []
        for gateway in gateways {
            do {
                if let fingerprint {
                    if let hit = try await gateway.findKey(fingerprint: fingerprint),
                        let c = try await gateway.findConsumer(hit.consumer.rawValue)
                    {
                        found = (gateway, c)
                        break
                    }
                } else if let name = consumer, let c = try await gateway.findConsumer(name) {
                    found = (gateway, c)
                    break
                }
            } catch {
                problems.append("\(error)")
            }
        }

        let gatewayName = found?.gateway.name ?? gateways.map(\.name).joined(separator: ", ")
        let rule = config.gateways.first { $0.name == found?.gateway.name }?.match ?? config.gateways[0].match
        var details: ConsumerDetails? = nil
        var directory = ExplainEvidence.Directory.notChecked("no consumer found")
        if let (gateway, c) = found {
            do {
                details = try await gateway.details(for: [c.id])[c.id]
            } catch {
                problems.append("keys and plugins not read: \(error)")
            }
            let value = rule.consumer == .customID ? c.customID : c.username
            if let value {
                let source = LiveAdapters.source(config, logger: logger)
                do {
                    switch try await source.lookup(value, by: rule.user) {
                    case .present(let user): directory = user.state == .active ? .active(user) : .deactivated(user)
                    case .outsideFilter(let dn): directory = .outsideFilter(dn)
                    case .absent: directory = .absent
                    }
                } catch {
                    directory = .notChecked("\(error)")
                }
            } else {
                directory = .unlinked
            }
        }

        var history: [JournalEntry] = []
        let query =
            found.map { JournalQuery(consumer: $0.consumer.id.rawValue) } ?? JournalQuery(keyFingerprint: fingerprint)
        if fingerprint != nil || found != nil {
            do {
                try JournalReader(path: config.journalPath).read(query: query) { record, _ in
                    if let entry = JournalEntry(record: record) { history.append(entry) }
                }
            } catch {
                problems.append("journal not read: \(error)")
            }
        }

        let protected = found.map { LiveAdapters.planner(config).isProtected($0.consumer) } ?? false
        let explanation = Explainer.explain(
            ExplainEvidence(
                gateway: gatewayName, keyFingerprint: fingerprint, consumer: found?.consumer, details: details,
                linkField: rule.user.rawValue, directory: directory, history: history, policy: config.policy,
                protected: protected, now: Environment.unixNow()))
        switch output {
        case .text:
            // Tags, reasons and errors come from the gateway, the directory and the journal: escaped.
            let lines = explanation.text.split(separator: "\n", omittingEmptySubsequences: false)
            print(lines.map { String($0).escapedForTerminal }.joined(separator: "\n"), terminator: "")
            for problem in problems { print("note: \(problem)".escapedForTerminal) }
        case .json:
            var json = explanation.json.objectValue ?? [:]
            json["problems"] = JSONValue(problems)
            print(JSONValue.object(json).canonical)
        }
        // A lookup that finds nothing exits 1, like any lookup: no consumer by that name on any gateway,
        // or a key whose consumer could not be read. (An unknown key is an answer: "another environment".)
        if found == nil && (consumer != nil || !problems.isEmpty) { throw ExitCode(1) }
    }
}
