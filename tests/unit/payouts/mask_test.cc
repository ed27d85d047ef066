// The masked forms of beneficiary data keep only what a person needs to recognise the payee (the
// last digits, the first letter) and hide the length of long values; the AAD names column and row.
#include <gtest/gtest.h>

#include "gateway/keys_ctl.h"
#include "gateway/payouts/beneficiary.h"
#include "keys/rewrap.h"

namespace paygate::payouts {
namespace {

TEST(PayoutMask, AccountShowsTheLastFourOnly) {
  EXPECT_EQ(MaskAccount("6222020200112233445"), "************3445");
  // Length does not leak: 19 and 30 digits mask alike.
  EXPECT_EQ(MaskAccount("622202020011223344512345673445"), "************3445");
  // Short values show at most a third of themselves.
  EXPECT_EQ(MaskAccount("12345"), "****5");
  EXPECT_EQ(MaskAccount("ab"), "****");
  EXPECT_EQ(MaskAccount(""), "");
  EXPECT_EQ(MaskIdNumber("110101199003074518"), "************4518");
}

TEST(PayoutMask, NameShowsTheFirstCharacterUtf8Aware) {
  EXPECT_EQ(MaskName("Zhang Sanfeng"), "Z**********");
  EXPECT_EQ(MaskName("\xE5\xBC\xA0\xE4\xB8\x89\xE4\xB8\xB0"), "\xE5\xBC\xA0**");  // 张三丰
  EXPECT_EQ(MaskName("Al"), "A**");
  EXPECT_EQ(MaskName(""), "");
}

TEST(PayoutMask, AadNamesColumnAndRow) {
  // keys::RowAad's form ("<prefix>/<row id>/<column>"), so `paygatectl keys rewrap` rebuilds it.
  EXPECT_EQ(BeneficiaryAad("beneficiary_account_enc", "po_abc"),
            "payouts/po_abc/beneficiary_account_enc");
  EXPECT_NE(BeneficiaryAad("beneficiary_account_enc", "po_abc"),
            BeneficiaryAad("beneficiary_name_enc", "po_abc"));
}

TEST(PayoutMask, KeysRewrapRebuildsTheSameAadForEveryRegisteredColumn) {
  int registered = 0;
  config::v1::Config config;
  config.mutable_keys()->set_pii_data_key("personal");
  for (const keys::EncryptedColumn& column : gateway::EncryptedColumns(config)) {
    if (column.table != "payouts") continue;
    ++registered;
    // One data key for personal data: the daemon's cipher is the configured keys.pii_data_key.
    EXPECT_EQ(column.data_key, "personal");
    EXPECT_EQ(keys::RowAad(column, "po_abc"), BeneficiaryAad(column.blob_column, "po_abc"));
  }
  EXPECT_EQ(registered, 3);
}

}  // namespace
}  // namespace paygate::payouts
