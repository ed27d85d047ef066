// Proves every rule of config/rules/insurance.rules: for each, one test makes it fire and one keeps
// it quiet on a near miss. Events start from clean baselines (which fire nothing, as the first
// tests prove) and change only what the rule looks at; velocity rules get their history through
// Observe, exactly as the gateway feeds it after each decision.
#include <algorithm>
#include <deque>
#include <string>

#include <gtest/gtest.h>

#include "gateway/risk/event.h"
#include "tests/unit/risk/risk_test_util.h"

namespace paygate::risk {
namespace {

using testing::kDay;
using testing::kHour;
using testing::kMinute;
using testing::kT0;

constexpr std::int64_t kNow = kT0;

std::shared_ptr<const CompiledRuleset> Pack() {
  static const auto pack =
      testing::MustCompile(testing::ReadSourceFile("config/rules/insurance.rules"));
  return pack;
}

class PackTest : public ::testing::Test {
 protected:
  PackTest() : h_(Pack()) {
    ListSetBuilder b(1);
    EXPECT_TRUE(b.Add("blocked_instruments", ListKind::kAccountHash, "card-stolen"));
    EXPECT_TRUE(b.Add("blocked_accounts", ListKind::kAccountHash, "acct-mule"));
    EXPECT_TRUE(b.Add("blocked_devices", ListKind::kDeviceId, "dev-fraud"));
    EXPECT_TRUE(b.Add("risky_ips", ListKind::kIp, "198.51.100.0/24"));
    EXPECT_TRUE(b.Add("prepaid_bins", ListKind::kBin, "53000000-53009999"));
    EXPECT_TRUE(b.Add("sanctioned_names", ListKind::kName, "name-sanctioned"));
    EXPECT_TRUE(b.Add("sanctioned_ids", ListKind::kIdNumber, "id-sanctioned"));
    EXPECT_TRUE(b.Add("high_risk_countries", ListKind::kCountry, "KP"));
    h_.SetLists(std::move(b).Build());
  }

  // Events keep views of their text; the fixture owns it.
  std::string_view Keep(std::string s) { return text_.emplace_back(std::move(s)); }

  void Common(Event& e) {
    e.SetText(Attr::kDeviceId, "dev-A");
    e.SetText(Attr::kDeviceIp, "192.0.2.10");
    e.SetText(Attr::kDeviceIpCountry, "CN");
    e.SetBool(Attr::kDeviceIsAnonymousIp, false);
    e.SetText(Attr::kCustomerId, "cust-A");
    e.SetTime(Attr::kCustomerCreatedAt, e.time() - 400 * kDay);
    e.SetText(Attr::kCustomerResidenceCountry, "CN");
    e.SetText(Attr::kCustomerNameHash, "name-A");
    e.SetText(Attr::kCustomerEmailHash, "email-A");
    e.SetBool(Attr::kCustomerEmailIsDisposable, false);
    e.SetText(Attr::kCustomerAddressHash, "addr-A");
    e.SetText(Attr::kPolicyId, "pol-A");
    e.SetText(Attr::kPolicyHolderId, "cust-A");
    e.SetText(Attr::kPolicyCountry, "CN");
    e.SetTime(Attr::kPolicyStartDate, e.time() - 200 * kDay);
    e.SetMoney(Attr::kPolicyPremiumDue, 100000, "CNY");
    e.SetMoney(Attr::kPolicyPremiumPaid, 100000, "CNY");
    e.SetTime(Attr::kPolicyLastCoverageChangeAt, e.time() - 300 * kDay);
    e.SetTime(Attr::kPolicyReinstatedAt, e.time() - 300 * kDay);
    e.SetMoney(Attr::kPolicyAutoApprovalLimit, 1000000, "CNY");
  }
  Event Premium(std::int64_t t = kNow) {
    Event e(EventType::kPremiumPayment, t);
    Common(e);
    e.SetMoney(Attr::kPaymentAmount, 100000, "CNY");
    e.SetText(Attr::kPayerInstrumentHash, "card-A");
    e.SetText(Attr::kPayerCardBin, "62220000");
    e.SetText(Attr::kPayerCardCountry, "CN");
    e.SetText(Attr::kPayerCardFunding, "debit");
    e.SetText(Attr::kPayerNameHash, "name-A");
    e.SetBool(Attr::kPayerIsPolicyholder, true);
    e.SetText(Attr::kPayerRelationship, "self");
    return e;
  }
  void RefundFields(Event& e) {
    e.SetMoney(Attr::kRefundAmount, 10000, "CNY");
    e.SetText(Attr::kRefundDestinationHash, "card-A");
    e.SetText(Attr::kRefundOriginalInstrumentHash, "card-A");
    e.SetBool(Attr::kRefundHolderMatchesPolicyholder, true);
  }
  Event Refund(std::int64_t t = kNow) {
    Event e(EventType::kRefund, t);
    Common(e);
    RefundFields(e);
    e.SetTime(Attr::kPolicyLastOverpaymentAt, t - 300 * kDay);
    return e;
  }
  Event Cancel(std::int64_t t = kNow) {
    Event e(EventType::kPolicyCancelled, t);
    Common(e);
    RefundFields(e);
    return e;
  }
  void PayeeFields(Event& e) {
    e.SetText(Attr::kClaimantId, "cust-A");
    e.SetText(Attr::kBeneficiaryAccountHash, "acct-A");
    e.SetText(Attr::kBeneficiaryNameHash, "name-A");
    e.SetText(Attr::kBeneficiaryIdNumberHash, "id-A");
    e.SetText(Attr::kBeneficiaryBankCountry, "CN");
    e.SetBool(Attr::kBeneficiaryMatchesPolicyholder, true);
    e.SetBool(Attr::kBeneficiaryIsVerified, true);
  }
  Event AccountChange(std::int64_t t = kNow) {
    Event e(EventType::kPayoutAccountChanged, t);
    Common(e);
    PayeeFields(e);
    return e;
  }
  Event Claim(std::int64_t t = kNow) {
    Event e(EventType::kClaimPayout, t);
    Common(e);
    PayeeFields(e);
    e.SetText(Attr::kClaimId, Keep("clm-" + std::to_string(t)));
    e.SetMoney(Attr::kClaimAmount, 123456, "CNY");
    e.SetTime(Attr::kClaimLossDate, t - 10 * kDay);
    e.SetTime(Attr::kClaimReportedAt, t - 9 * kDay);
    e.SetText(Attr::kClaimInvoiceHash, Keep("inv-" + std::to_string(t)));
    return e;
  }
  // The payout account of the baseline claims has been on file for 60 days.
  void AccountOnFile() { h_.Observe(AccountChange(kNow - 60 * kDay)); }

  std::string FiredList(const Decision& d) {
    std::string s;
    for (std::size_t i = 0; i < d.fired_count; ++i) s += d.ruleset->rules[d.fired[i].rule].id + " ";
    return s;
  }
  void ExpectFires(const Event& e, std::string_view rule) {
    const Decision& d = h_.Decide(e);
    EXPECT_TRUE(d.HasFired(rule)) << rule << " did not fire; fired: " << FiredList(d)
                                  << "; undecided: " << d.UnknownWhy(rule);
  }
  void ExpectQuiet(const Event& e, std::string_view rule) {
    const Decision& d = h_.Decide(e);
    EXPECT_FALSE(d.HasFired(rule)) << rule << " fired";
  }

  testing::Harness h_;
  std::deque<std::string> text_;
};

// --- baselines
// ----------------------------------------------------------------------------------------------

TEST_F(PackTest, CleanEventsFireNothing) {
  // Proves the baselines are clean, so each fire test below fires because of what it changes.
  AccountOnFile();
  for (const Event& e : {Premium(), Refund(), Cancel(), AccountChange(), Claim()}) {
    const Decision& d = h_.Decide(e);
    EXPECT_EQ(d.fired_count, 0) << EventTypeName(e.type()) << ": " << FiredList(d);
    EXPECT_EQ(d.outcome, Outcome::kAllow) << EventTypeName(e.type());
  }
}

// --- A. premium collection
// ------------------------------------------------------------------------------------

TEST_F(PackTest, PREM00_FiresOnBlockedInstrument) {
  // Proves the "payment from a listed instrument is refused with a reason code".
  Event e = Premium();
  e.SetText(Attr::kPayerInstrumentHash, "card-stolen");
  ExpectFires(e, "PREM-00");
  EXPECT_EQ(h_.Decide(e).outcome, Outcome::kBlock);
}
TEST_F(PackTest, PREM00_QuietOnOtherInstrument) {
  Event e = Premium();
  e.SetText(Attr::kPayerInstrumentHash, "card-stolen-2");
  ExpectQuiet(e, "PREM-00");
}

TEST_F(PackTest, PREM01_FiresOnFifthAttemptFromDevice) {
  for (int i = 0; i < 5; ++i) h_.Observe(Premium(kNow - 50 * kMinute + i));
  ExpectFires(Premium(), "PREM-01");
}
TEST_F(PackTest, PREM01_FiresOnManyTinyAttemptsFromIp) {
  for (int i = 0; i < 10; ++i) {
    Event e = Premium(kNow - 30 * kMinute + i);
    e.SetText(Attr::kDeviceId, Keep("dev-" + std::to_string(i)));
    e.SetMoney(Attr::kPaymentAmount, 100, "CNY");
    h_.Observe(e);
  }
  ExpectFires(Premium(), "PREM-01");
}
TEST_F(PackTest, PREM01_QuietOnFourAttemptsOrOldOnes) {
  for (int i = 0; i < 4; ++i) h_.Observe(Premium(kNow - 50 * kMinute + i));
  for (int i = 0; i < 5; ++i) h_.Observe(Premium(kNow - 3 * kHour + i));
  ExpectQuiet(Premium(), "PREM-01");
}

TEST_F(PackTest, PREM02_FiresOnThreeOtherCardsForPolicy) {
  for (const char* card : {"c1", "c2", "c3"}) {
    Event e = Premium(kNow - 2 * kHour);
    e.SetText(Attr::kPayerInstrumentHash, card);
    e.SetText(Attr::kDeviceId, card);  // different devices, so PREM-01 stays out of it
    h_.Observe(e);
  }
  ExpectFires(Premium(), "PREM-02");
}
TEST_F(PackTest, PREM02_QuietOnTheSameCardRepeated) {
  for (int i = 0; i < 3; ++i) h_.Observe(Premium(kNow - 2 * kHour + i));
  ExpectQuiet(Premium(), "PREM-02");
}

TEST_F(PackTest, PREM03_FiresOnManyPoliciesFromOneDevice) {
  for (int i = 0; i < 3; ++i) {
    Event e = Premium(kNow - 2 * kDay + i);
    e.SetText(Attr::kPolicyId, Keep("pol-" + std::to_string(i)));
    h_.Observe(e);
  }
  ExpectFires(Premium(), "PREM-03");
}
TEST_F(PackTest, PREM03_FiresOnManyPolicyholdersFromOneIp) {
  for (int i = 0; i < 3; ++i) {
    Event e = Premium(kNow - 2 * kDay + i);
    e.SetText(Attr::kDeviceId, Keep("dev-" + std::to_string(i)));
    e.SetText(Attr::kPolicyHolderId, Keep("holder-" + std::to_string(i)));
    h_.Observe(e);
  }
  ExpectFires(Premium(), "PREM-03");
}
TEST_F(PackTest, PREM03_QuietWhenPoliciesAreOlderThanAWeek) {
  for (int i = 0; i < 3; ++i) {
    Event e = Premium(kNow - 9 * kDay + i);
    e.SetText(Attr::kPolicyId, Keep("pol-" + std::to_string(i)));
    h_.Observe(e);
  }
  ExpectQuiet(Premium(), "PREM-03");
}

TEST_F(PackTest, PREM04_FiresOnThreeIdentitiesOnDevice) {
  for (const char* name : {"n1", "n2", "n3"}) {
    Event e = Premium(kNow - 5 * kDay);
    e.SetText(Attr::kCustomerNameHash, name);
    h_.Observe(e);
  }
  ExpectFires(Premium(), "PREM-04");
}
TEST_F(PackTest, PREM04_QuietOnTwoIdentities) {
  for (const char* name : {"n1", "n2"}) {
    Event e = Premium(kNow - 5 * kDay);
    e.SetText(Attr::kCustomerNameHash, name);
    h_.Observe(e);
  }
  ExpectQuiet(Premium(), "PREM-04");
}

TEST_F(PackTest, PREM05_FiresOnUnrelatedThirdPartyPayer) {
  Event e = Premium();
  e.SetBool(Attr::kPayerIsPolicyholder, false);
  e.SetText(Attr::kPayerRelationship, "friend");
  ExpectFires(e, "PREM-05");
}
TEST_F(PackTest, PREM05_QuietOnAParentPaying) {
  Event e = Premium();
  e.SetBool(Attr::kPayerIsPolicyholder, false);
  e.SetText(Attr::kPayerRelationship, "parent");
  ExpectQuiet(e, "PREM-05");
}

TEST_F(PackTest, PREM06_FiresOnInstrumentFundingThreeHolders) {
  for (int i = 0; i < 3; ++i) {
    Event e = Premium(kNow - 30 * kDay + i);
    e.SetText(Attr::kPolicyHolderId, Keep("holder-" + std::to_string(i)));
    e.SetText(Attr::kDeviceId, Keep("dev-" + std::to_string(i)));
    e.SetText(Attr::kDeviceIp, Keep("192.0.2." + std::to_string(100 + i)));
    h_.Observe(e);
  }
  ExpectFires(Premium(), "PREM-06");
}
TEST_F(PackTest, PREM06_QuietAfterNinetyDays) {
  for (int i = 0; i < 3; ++i) {
    Event e = Premium(kNow - 100 * kDay + i);
    e.SetText(Attr::kPolicyHolderId, Keep("holder-" + std::to_string(i)));
    h_.Observe(e);
  }
  ExpectQuiet(Premium(), "PREM-06");
}

TEST_F(PackTest, PREM07_FiresOnOverpayment) {
  Event e = Premium();
  e.SetMoney(Attr::kPaymentAmount, 110001, "CNY");
  ExpectFires(e, "PREM-07");
}
TEST_F(PackTest, PREM07_QuietAtExactlyTenPercentOver) {
  Event e = Premium();
  e.SetMoney(Attr::kPaymentAmount, 110000, "CNY");
  ExpectQuiet(e, "PREM-07");
}

TEST_F(PackTest, REF08_FiresOnRefundSoonAfterOverpayment) {
  Event e = Refund();
  e.SetTime(Attr::kPolicyLastOverpaymentAt, kNow - 10 * kDay);
  ExpectFires(e, "REF-08");
}
TEST_F(PackTest, REF08_QuietAfterThirtyDays) {
  Event e = Refund();
  e.SetTime(Attr::kPolicyLastOverpaymentAt, kNow - 31 * kDay);
  ExpectQuiet(e, "REF-08");
}

TEST_F(PackTest, CAN09_FiresOnFreeLookCancelWithLargeRefund) {
  Event e = Cancel();
  e.SetTime(Attr::kPolicyStartDate, kNow - 5 * kDay);
  e.SetMoney(Attr::kRefundAmount, 90000, "CNY");
  ExpectFires(e, "CAN-09");
}
TEST_F(PackTest, CAN09_QuietOnSmallRefund) {
  Event e = Cancel();
  e.SetTime(Attr::kPolicyStartDate, kNow - 5 * kDay);
  e.SetMoney(Attr::kRefundAmount, 79999, "CNY");
  ExpectQuiet(e, "CAN-09");
}

TEST_F(PackTest, REF10_FiresOnRefundToAnotherInstrument) {
  Event e = Refund();
  e.SetText(Attr::kRefundDestinationHash, "card-B");
  ExpectFires(e, "REF-10");
  Event c = Cancel();
  c.SetBool(Attr::kRefundHolderMatchesPolicyholder, false);
  ExpectFires(c, "REF-10");
}
TEST_F(PackTest, REF10_QuietOnRefundToTheOriginalInstrument) { ExpectQuiet(Refund(), "REF-10"); }

TEST_F(PackTest, PREM11_FiresOnLargePremiumFromNewCustomer) {
  Event e = Premium();
  e.SetMoney(Attr::kPaymentAmount, 2500000, "CNY");
  e.SetMoney(Attr::kPolicyPremiumDue, 2500000, "CNY");
  e.SetTime(Attr::kCustomerCreatedAt, kNow - 10 * kHour);
  ExpectFires(e, "PREM-11");
}
TEST_F(PackTest, PREM11_QuietForEstablishedCustomer) {
  Event e = Premium();
  e.SetMoney(Attr::kPaymentAmount, 2500000, "CNY");
  e.SetMoney(Attr::kPolicyPremiumDue, 2500000, "CNY");
  e.SetTime(Attr::kCustomerCreatedAt, kNow - 73 * kHour);
  ExpectQuiet(e, "PREM-11");
}

TEST_F(PackTest, PREM12_FiresOnPrepaidFunding) {
  Event e = Premium();
  e.SetText(Attr::kPayerCardFunding, "prepaid");
  e.SetMoney(Attr::kPaymentAmount, 100001, "CNY");
  ExpectFires(e, "PREM-12");
  Event b = Premium();
  b.SetText(Attr::kPayerCardBin, "530012");
  b.SetMoney(Attr::kPaymentAmount, 100001, "CNY");
  ExpectFires(b, "PREM-12");
}
TEST_F(PackTest, PREM12_QuietOnSmallPrepaidPremium) {
  Event e = Premium();
  e.SetText(Attr::kPayerCardFunding, "prepaid");
  e.SetMoney(Attr::kPaymentAmount, 100000, "CNY");
  e.SetMoney(Attr::kPolicyPremiumDue, 100000, "CNY");
  ExpectQuiet(e, "PREM-12");  // exactly 1000.00 is not above 1000.00
}

TEST_F(PackTest, PREM13_FiresOnGeoMismatchOrAnonymiser) {
  Event e = Premium();
  e.SetText(Attr::kDeviceIpCountry, "RU");
  ExpectFires(e, "PREM-13");
  Event a = Premium();
  a.SetText(Attr::kDeviceIp, "198.51.100.77");
  ExpectFires(a, "PREM-13");
}
TEST_F(PackTest, PREM13_QuietWhenIpMatchesResidence) {
  Event e = Premium();
  e.SetText(Attr::kPayerCardCountry, "HK");  // card abroad, but the IP is at home
  ExpectQuiet(e, "PREM-13");
}

TEST_F(PackTest, PREM14_FiresOnDisposableEmailAndHighValue) {
  Event e = Premium();
  e.SetBool(Attr::kCustomerEmailIsDisposable, true);
  e.SetMoney(Attr::kPaymentAmount, 500000, "CNY");
  e.SetMoney(Attr::kPolicyPremiumDue, 500000, "CNY");
  ExpectFires(e, "PREM-14");
}
TEST_F(PackTest, PREM14_QuietForAnEmailSeenLastMonth) {
  h_.Observe(Premium(kNow - 30 * kDay));
  Event e = Premium();
  e.SetMoney(Attr::kPaymentAmount, 500000, "CNY");
  e.SetMoney(Attr::kPolicyPremiumDue, 500000, "CNY");
  ExpectQuiet(e, "PREM-14");
}

TEST_F(PackTest, CAN15_FiresOnFourthCancellationInAYear) {
  for (int i = 0; i < 3; ++i) h_.Observe(Cancel(kNow - (100 + i * 50) * kDay));
  ExpectFires(Cancel(), "CAN-15");
}
TEST_F(PackTest, CAN15_QuietOnThirdCancellation) {
  for (int i = 0; i < 2; ++i) h_.Observe(Cancel(kNow - (100 + i * 50) * kDay));
  h_.Observe(Cancel(kNow - 400 * kDay));
  ExpectQuiet(Cancel(), "CAN-15");
}

// --- B. claims and payouts
// ------------------------------------------------------------------------------------

TEST_F(PackTest, CLM16_FiresOnLossSoonAfterInception) {
  AccountOnFile();
  Event e = Claim();
  e.SetTime(Attr::kPolicyStartDate, kNow - 20 * kDay);
  ExpectFires(e, "CLM-16");
}
TEST_F(PackTest, CLM16_QuietAfterThirtyDays) {
  AccountOnFile();
  Event e = Claim();
  e.SetTime(Attr::kPolicyStartDate, kNow - 41 * kDay);  // loss 31 days after inception
  ExpectQuiet(e, "CLM-16");
}

TEST_F(PackTest, CLM17_FiresOnLossSoonAfterCoverageChange) {
  AccountOnFile();
  Event e = Claim();
  e.SetTime(Attr::kPolicyLastCoverageChangeAt, kNow - 15 * kDay);
  ExpectFires(e, "CLM-17");
  Event r = Claim();
  r.Clear(Attr::kPolicyLastCoverageChangeAt);  // unknown side, true side: still fires
  r.SetTime(Attr::kPolicyReinstatedAt, kNow - 15 * kDay);
  ExpectFires(r, "CLM-17");
}
TEST_F(PackTest, CLM17_QuietWhenChangesAreOld) {
  AccountOnFile();
  Event e = Claim();
  e.Clear(Attr::kPolicyReinstatedAt);  // never reinstated: undecided side, false side -> quiet
  ExpectQuiet(e, "CLM-17");
  EXPECT_EQ(h_.Decide(e).UnknownWhy("CLM-17"),
            "missing elapsed(policy.reinstated_at, claim.loss_date)");
}

TEST_F(PackTest, CLM18_FiresOnUnverifiedThirdPartyPayee) {
  AccountOnFile();
  Event e = Claim();
  e.SetBool(Attr::kBeneficiaryMatchesPolicyholder, false);
  e.SetBool(Attr::kBeneficiaryIsVerified, false);
  ExpectFires(e, "CLM-18");
}
TEST_F(PackTest, CLM18_QuietOnVerifiedBeneficiary) {
  AccountOnFile();
  Event e = Claim();
  e.SetBool(Attr::kBeneficiaryMatchesPolicyholder, false);
  ExpectQuiet(e, "CLM-18");
}

TEST_F(PackTest, CLM19_ReviewOnTwoClaimantsBlockOnThree) {
  for (const char* claimant : {"cl-1", "cl-2"}) {
    Event e = AccountChange(kNow - 100 * kDay);
    e.SetText(Attr::kClaimantId, claimant);
    h_.Observe(e);
  }
  ExpectFires(Claim(), "CLM-19");
  ExpectQuiet(Claim(), "CLM-19B");
  Event third = AccountChange(kNow - 50 * kDay);
  third.SetText(Attr::kClaimantId, "cl-3");
  h_.Observe(third);
  ExpectFires(Claim(), "CLM-19B");
  EXPECT_EQ(h_.Decide(Claim()).outcome, Outcome::kBlock);
}
TEST_F(PackTest, CLM19_QuietForOneClaimantOrAfterAYear) {
  AccountOnFile();
  h_.Observe(Claim(kNow - 20 * kDay));  // same claimant again
  Event old = AccountChange(kNow - 380 * kDay);
  old.SetText(Attr::kClaimantId, "cl-old");
  h_.Observe(old);
  ExpectQuiet(Claim(), "CLM-19");
}

TEST_F(PackTest, CLM20_FiresOnPayoutSoonAfterAccountChange) {
  h_.Observe(AccountChange(kNow - 60 * kDay));
  h_.Observe(AccountChange(kNow - 20 * kHour));
  ExpectFires(Claim(), "CLM-20");
}
TEST_F(PackTest, CLM20_QuietOnSmallPayout) {
  h_.Observe(AccountChange(kNow - 20 * kHour));
  Event e = Claim();
  e.SetMoney(Attr::kClaimAmount, 50000, "CNY");
  ExpectQuiet(e, "CLM-20");
}

TEST_F(PackTest, CLM21_FiresOnAccountFirstSeenNow) { ExpectFires(Claim(), "CLM-21"); }
TEST_F(PackTest, CLM21_QuietOnAccountOnFile) {
  h_.Observe(AccountChange(kNow - 25 * kHour));
  ExpectQuiet(Claim(), "CLM-21");
}

TEST_F(PackTest, CLM22_FiresOnClaimFrequency) {
  AccountOnFile();
  h_.Observe(Claim(kNow - 60 * kDay));
  h_.Observe(Claim(kNow - 30 * kDay));
  ExpectFires(Claim(), "CLM-22");
}
TEST_F(PackTest, CLM22_FiresOnManyClaimantsOnOneDevice) {
  AccountOnFile();
  for (const char* claimant : {"cl-1", "cl-2"}) {
    Event e = Claim(kNow - 100 * kDay);
    e.SetText(Attr::kClaimantId, claimant);
    e.SetText(Attr::kPolicyHolderId, claimant);
    e.SetText(Attr::kCustomerAddressHash, claimant);
    e.SetText(Attr::kBeneficiaryAccountHash, claimant);
    h_.Observe(e);
  }
  ExpectFires(Claim(), "CLM-22");
}
TEST_F(PackTest, CLM22_QuietOnOneEarlierClaim) {
  AccountOnFile();
  h_.Observe(Claim(kNow - 60 * kDay));
  h_.Observe(Claim(kNow - 120 * kDay));  // outside 90d for the holder count
  ExpectQuiet(Claim(), "CLM-22");
}

TEST_F(PackTest, CLM23_FiresOnRoundAmount) {
  AccountOnFile();
  Event e = Claim();
  e.SetMoney(Attr::kClaimAmount, 500000, "CNY");
  ExpectFires(e, "CLM-23");
}
TEST_F(PackTest, CLM23_QuietOnUnroundOrSmallAmount) {
  AccountOnFile();
  Event e = Claim();
  e.SetMoney(Attr::kClaimAmount, 500050, "CNY");
  ExpectQuiet(e, "CLM-23");
  e.SetMoney(Attr::kClaimAmount, 90000, "CNY");
  ExpectQuiet(e, "CLM-23");
}

TEST_F(PackTest, CLM24_FiresOnRepeatedClaimsJustUnderTheLimit) {
  AccountOnFile();
  for (int i = 0; i < 2; ++i) {
    Event e = Claim(kNow - (40 + 60 * i) * kDay);
    e.SetMoney(Attr::kClaimAmount, 950000, "CNY");
    h_.Observe(e);
  }
  Event e = Claim();
  e.SetMoney(Attr::kClaimAmount, 990000, "CNY");
  ExpectFires(e, "CLM-24");
}
TEST_F(PackTest, CLM24_QuietWhenEarlierClaimsWereSmall) {
  AccountOnFile();
  for (int i = 0; i < 2; ++i) h_.Observe(Claim(kNow - (40 + 60 * i) * kDay));  // 1234.56: far under
  Event e = Claim();
  e.SetMoney(Attr::kClaimAmount, 990000, "CNY");
  ExpectQuiet(e, "CLM-24");
}

TEST_F(PackTest, CLM25_HardBlocksSanctionedPayeeOverAnyAllow) {
  AccountOnFile();
  Event e = Claim();
  e.SetText(Attr::kBeneficiaryNameHash, "name-sanctioned");
  ExpectFires(e, "CLM-25");
  EXPECT_EQ(h_.Decide(e).outcome, Outcome::kHardBlock);
  Event a = AccountChange();
  a.SetText(Attr::kBeneficiaryIdNumberHash, "id-sanctioned");
  ExpectFires(a, "CLM-25");
}
TEST_F(PackTest, CLM25_QuietOnCleanPayee) {
  AccountOnFile();
  Event e = Claim();
  e.SetText(Attr::kBeneficiaryNameHash, "name-sanctioned-not");
  ExpectQuiet(e, "CLM-25");
}

TEST_F(PackTest, CLM26_FiresOnHighRiskOrForeignPayeeBank) {
  AccountOnFile();
  Event e = Claim();
  e.SetText(Attr::kBeneficiaryBankCountry, "SG");
  ExpectFires(e, "CLM-26");
  e.SetText(Attr::kBeneficiaryBankCountry, "KP");
  e.SetText(Attr::kPolicyCountry, "KP");
  ExpectFires(e, "CLM-26");
}
TEST_F(PackTest, CLM26_QuietOnDomesticBank) {
  AccountOnFile();
  ExpectQuiet(Claim(), "CLM-26");
}

TEST_F(PackTest, CLM27_FiresOnLateReporting) {
  AccountOnFile();
  Event e = Claim();
  e.SetTime(Attr::kClaimLossDate, kNow - 50 * kDay);
  e.SetTime(Attr::kClaimReportedAt, kNow - 5 * kDay);
  ExpectFires(e, "CLM-27");
}
TEST_F(PackTest, CLM27_QuietAtThirtyDays) {
  AccountOnFile();
  Event e = Claim();
  e.SetTime(Attr::kClaimLossDate, kNow - 40 * kDay);
  e.SetTime(Attr::kClaimReportedAt, kNow - 10 * kDay);
  ExpectQuiet(e, "CLM-27");
}

TEST_F(PackTest, CLM28_BlocksAReusedInvoice) {
  AccountOnFile();
  Event earlier = Claim(kNow - 100 * kDay);
  earlier.SetText(Attr::kClaimInvoiceHash, "inv-dup");
  h_.Observe(earlier);
  Event e = Claim();
  e.SetText(Attr::kClaimInvoiceHash, "inv-dup");
  ExpectFires(e, "CLM-28");
  EXPECT_EQ(h_.Decide(e).outcome, Outcome::kBlock);
}
TEST_F(PackTest, CLM28_QuietOnANewInvoice) {
  AccountOnFile();
  h_.Observe(Claim(kNow - 100 * kDay));
  ExpectQuiet(Claim(), "CLM-28");
}

TEST_F(PackTest, CLM29_BlocksListedPayoutAccount) {
  Event e = AccountChange();
  e.SetText(Attr::kBeneficiaryAccountHash, "acct-mule");
  ExpectFires(e, "CLM-29");
  EXPECT_EQ(h_.Decide(e).outcome, Outcome::kBlock);
}
TEST_F(PackTest, CLM29_QuietOnUnlistedAccount) { ExpectQuiet(AccountChange(), "CLM-29"); }

TEST_F(PackTest, CAN30_FiresOnCancelSoonAfterAClaimWasPaid) {
  AccountOnFile();
  h_.Observe(Claim(kNow - 10 * kDay));
  ExpectFires(Cancel(), "CAN-30");
}
TEST_F(PackTest, CAN30_QuietWhenTheLastClaimIsOld) {
  AccountOnFile();
  h_.Observe(Claim(kNow - 45 * kDay));
  ExpectQuiet(Cancel(), "CAN-30");
}

TEST_F(PackTest, EveryRuleHasTests) {
  // Proves this file keeps up with the pack: each rule id appears in a fire test above (a rule
  // added to the pack without tests fails here).
  const std::string self = testing::ReadSourceFile("tests/unit/risk/insurance_pack_test.cc");
  for (const auto& rule : Pack()->rules) {
    std::string compact = rule.id;
    compact.erase(std::remove(compact.begin(), compact.end(), '-'), compact.end());
    if (compact.back() == 'B') compact.pop_back();
    EXPECT_NE(self.find("TEST_F(PackTest, " + compact + "_"), std::string::npos) << rule.id;
    EXPECT_NE(self.find("\"" + rule.id + "\""), std::string::npos) << rule.id;
  }
}

}  // namespace
}  // namespace paygate::risk
