#!/bin/sh
# The seed deployment's step 6 with kms-wrap: encrypt a secure-element part's parent key and
# load the parts table. Runs in DIR (default: a new temporary directory); needs kms-wrap and jq.
set -eu
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
cd "$dir"
export KMS_WRAP_KEYRING="$dir/keyring.yml"

# 1. a KMS key for the parts table
[ -f keyring.yml ] || kms-wrap genkey parts

# 2. the part's parent key arrives as a file (here: a random one); encrypt it, bound to the
#    part number
part=ATECC608B-TNGLORA
[ -f part.key ] || (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >part.key; echo >>part.key)
jq -nc --arg pn "$part" --rawfile k part.key '{part_number: $pn, psk_root_keys: ($k | rtrimstr("\n"))}' |
	kms-wrap encrypt -K parts -C part_number >parts.jsonl

# 3. devices on that part: DevEUI, JoinEUI, MAC version, part number and the element's serial
cat >devices.jsonl <<EOT
{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000000","mac_version":"1.0.3","part_number":"$part","serial_number":"0123A1B2C3D4E5F6EE","home_net_id":"000013"}
{"dev_eui":"0004A30B001C0531","join_eui":"70B3D57ED0000000","mac_version":"1.1","part_number":"$part","serial_number":"0123A1B2C3D4E5F7EE","home_net_id":"000013"}
EOT

# 4. every part decrypts (nothing secret is printed)
kms-wrap decrypt -C part_number <parts.jsonl >/dev/null

# 5. the crypto process loads the table; ljs-join would start it with --crypto
echo "parts table: $dir/parts.jsonl"
echo "run: ljs-join --devices $dir/devices.jsonl --crypto 'kms-wrap serve -D $dir/devices.jsonl -p $dir/parts.jsonl -C part_number'"
