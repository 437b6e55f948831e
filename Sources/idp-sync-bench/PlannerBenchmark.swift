import Foundation
import SyncCore

/// `swift run -c release idp-sync-bench [N]`: times the pure planner on N users and N consumers
/// (default 1,000,000; 1% of the consumers have no user). Prints figures; not a test.
@main
enum PlannerBenchmark {
    static func main() {
        let n = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 1_000_000
        func uuid(_ i: Int) -> String {
            let hex = String(i, radix: 16)
            let padded = String(repeating: "0", count: 12 - hex.count) + hex
            return "5aca05f7-1e30-5a6b-82b9-" + padded
        }
        var users: [DirectoryUser] = []
        users.reserveCapacity(n)
        for i in 0..<n {
            users.append(DirectoryUser(id: UserID(uuid(i)), username: "user\(i)", state: i % 500 == 7 ? .deactivated : .active))
        }
        var consumers: [Consumer] = []
        consumers.reserveCapacity(n)
        for i in 0..<n {
            let link = i % 100 == 3 ? uuid(n + i) : (i % 2 == 0 ? uuid(i).uppercased() : uuid(i))  // 1% orphans; half in capitals (ids compare case-insensitively)
            consumers.append(
                Consumer(id: ConsumerID("c-\(i)"), username: "user\(i)", customID: link, tags: ["idp-managed"]))
        }
        let directory = DirectorySnapshot(sourceType: "bench", scope: "ou=people", users: users)
        let gateway = GatewaySnapshot(name: "prod", consumers: consumers)
        let slices: Planner.ParallelFor = { n, body in DispatchQueue.concurrentPerform(iterations: n, execute: body) }
        func planner(parallel: Bool) -> Planner {
            Planner(
                policy: Policy(gracePeriod: 86_400, protected: ["svc-*", "breakglass"]),
                gateways: [GatewayPolicy(name: "prod", match: .recommended)], parallel: parallel ? slices : nil)
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        // Serial and parallel alternate, three of each, so both see the same machine.
        var times: [Double] = []
        var serial: [Double] = []
        var plan: SyncPlan? = nil
        var serialPlan: SyncPlan? = nil
        for _ in 0..<3 {
            var start = ContinuousClock.now
            plan = planner(parallel: true).plan(directory: directory, snapshots: [gateway], now: 1_796_000_000)
            times.append(seconds(ContinuousClock.now - start))
            start = ContinuousClock.now
            serialPlan = planner(parallel: false).plan(directory: directory, snapshots: [gateway], now: 1_796_000_000)
            serial.append(seconds(ContinuousClock.now - start))
        }
        serial.sort()
        times.sort()
        let indexStart = ContinuousClock.now
        var index: [String: Int] = [:]
        index.reserveCapacity(n)
        for (i, u) in users.enumerated() { index[u.id.rawValue] = i }
        print(String(format: "for scale: a bare [String: Int] of the %d user ids takes %.3f s to build", n, seconds(ContinuousClock.now - indexStart)))
        let p = plan!
        print("planner: \(n) users × \(n) consumers → \(p.actions.count) actions (\(p.detailsNeeded.values.map(\.count).reduce(0, +)) need details)")
        print(String(format: "planner, parallel slices: median %.3f s, best %.3f s (3 runs)", times[1], times[0]))
        print(String(format: "planner, serial:          median %.3f s, best %.3f s (3 runs)", serial[1], serial[0]))
        print("the two plans are \(serialPlan!.hashLines == p.hashLines ? "identical" : "DIFFERENT")")
    }
}
