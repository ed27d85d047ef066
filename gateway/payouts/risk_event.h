#pragma once

// The fraud rules' claim_payout event (gateway/risk/schema.h declares its attributes), built from
// POST /v1/payouts the way gateway/fraud/events.h builds premium_payment. Personal data (the
// beneficiary's account, name and ID number) is hashed with the keyed hasher before the event
// exists. The payout red flags of issue 7 map onto the insurance rule pack:
//   account shared across claimants   beneficiary.account_hash -> claimants_per_account_365d
//                                     (CLM-19/19B);
//   account changed shortly before    a payout_account_changed event before this one when the
//                                     claimant's last payout went elsewhere (CLM-20);
//   payee not the policyholder        beneficiary.matches_policyholder / is_verified (CLM-18);
//   claim soon after inception        policy.start_date vs claim.loss_date (CLM-16);
//   amount just under the threshold   policy.auto_approval_limit = the approval threshold (CLM-24).
#include <cstdint>
#include <string>
#include <string_view>

#include "config/result.h"
#include "gateway/api/v1/payouts.pb.h"
#include "gateway/fraud/events.h"
#include "gateway/fraud/hashing.h"
#include "gateway/risk/event.h"

namespace paygate::payouts {

struct ClaimContext {
  std::int64_t now_s = 0;
  // The approval threshold, as the rules' auto-approval limit (0: not set).
  std::int64_t auto_approval_limit_minor = 0;
};

// The claim_payout event; an error names the request field that is malformed.
Result<risk::Event, std::string> ClaimPayoutEvent(const api::v1::CreatePayoutRequest& request,
                                                  std::string_view principal,
                                                  const ClaimContext& context,
                                                  const fraud::PersonalHasher& hasher,
                                                  fraud::EventTexts& texts);
// The payout_account_changed event for the same claimant and new account.
Result<risk::Event, std::string> AccountChangedEvent(const api::v1::CreatePayoutRequest& request,
                                                     std::string_view principal, std::int64_t now_s,
                                                     const fraud::PersonalHasher& hasher,
                                                     fraud::EventTexts& texts);

}  // namespace paygate::payouts
