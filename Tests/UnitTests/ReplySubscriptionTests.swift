import Testing

@testable import Gateway

/// The bind/unbind machine as a value; waiters are numbers here.
@Suite("Reply subscription")
struct ReplySubscriptionTests {
    @Test func theFirstListenerBindsAndTheOthersWaitForThatBind() {
        var subscription = ReplySubscription<Int>()
        #expect(subscription.attach() == .bind)
        #expect(subscription.attach() == .wait)
        #expect(subscription.enqueue(1) == true)
        #expect(subscription.enqueue(2) == true)
        #expect(subscription.bindSucceeded() == [1, 2])
        #expect(subscription.attach() == .ready)
    }

    @Test func aFailedBindFailsItsWaitersAndLeavesTheSessionUnbound() {
        var subscription = ReplySubscription<Int>()
        _ = subscription.attach()
        _ = subscription.enqueue(7)
        #expect(subscription.bindFailed() == [7])
        #expect(subscription.isUnbound)
        #expect(subscription.attach() == .bind)  // the next listener tries again
    }

    /// Never a bind during an unbind: a listener arriving then waits, and binds anew.
    @Test func aListenerArrivingDuringTheUnbindBindsAfterIt() {
        var subscription = ReplySubscription<Int>()
        _ = subscription.attach()
        _ = subscription.bindSucceeded()
        #expect(subscription.release() == true)
        #expect(subscription.release() == false)  // one unbind at a time
        #expect(subscription.attach() == .wait)
        #expect(subscription.enqueue(3) == true)
        #expect(subscription.unbindFinished() == [3])
        #expect(subscription.attach() == .bind)
    }

    @Test func onlyABoundSessionIsReleasedAndNothingWaitsWhenNothingIsUnderWay() {
        var subscription = ReplySubscription<Int>()
        #expect(subscription.release() == false)
        #expect(subscription.enqueue(1) == false)
        _ = subscription.attach()
        #expect(subscription.release() == false)  // still binding
        _ = subscription.bindSucceeded()
        #expect(subscription.enqueue(1) == false)
        #expect(subscription.bindSucceeded().isEmpty && subscription.unbindFinished().isEmpty)
    }
}
