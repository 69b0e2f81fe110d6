#!/usr/bin/env bats
# lib/ LwM2M object model and content formats: TLV, text, opaque, SenML JSON, SenML CBOR,
# LwM2M CBOR, plain CBOR and the LwM2M 1.0 JSON, with the OMA specification examples as vectors,
# round trips, coercion errors and hostile payloads; DDF files loaded at run time.
load test_helper
bats_require_minimum_version 1.5.0

@test "codec: object model, content formats, coercion and hostile input unit checks pass" {
	run "$UNIT/test_codec"
	assert_success
}

@test "codec: DDF files load, add objects and replace built-in ones" {
	d=$BATS_TEST_TMPDIR/ddf
	mkdir -p "$d"
	cat >"$d/10241.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Object ObjectType="MODefinition">
    <Name>Test Sensor</Name>
    <ObjectID>10241</ObjectID>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="7"><Name>Reset</Name><Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory><Type></Type></Item>
      <Item ID="1"><Name>Level</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>Float</Type>
        <Description><![CDATA[A <b>level</b> & more]]></Description></Item>
      <Item ID="2"><Name>Counts</Name><Operations>RW</Operations>
        <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Unsigned Integer</Type></Item>
      <Item ID="3"><Name>Blob</Name><Operations>W</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory><Type>Opaque</Type></Item>
    </Resources>
  </Object>
</LWM2M>
XML
	cat >"$d/3303-int.xml" <<'XML'
<LWM2M><Object><Name>Temperature (integer)</Name><ObjectID>3303</ObjectID>
<MultipleInstances>Multiple</MultipleInstances><Resources>
<Item ID="5700"><Name>Sensor Value</Name><Operations>R</Operations>
<MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item>
</Resources></Object></LWM2M>
XML
	echo "not xml" >"$d/README.txt"
	run "$UNIT/test_codec" --ddf "$d"
	assert_success
}

@test "codec: a broken DDF file is refused with its name and line" {
	d=$BATS_TEST_TMPDIR/bad
	mkdir -p "$d"
	printf '<LWM2M><Object><ObjectID>12</ObjectID>\n<Resources><Item ID="1"></Resources>\n' >"$d/broken.xml"
	run --separate-stderr "$UNIT/test_codec" --ddf-bad "$d"
	assert_success
	[[ $stderr == *"broken.xml:2:"*"mismatched tag"* ]]
	[[ $stderr == *"unable to read directory /nonexistent/dir"* ]]
}

@test "codec: the built-in table matches the OMA registry DDF files" {
	reg=
	for c in "${LWM2M_REGISTRY:-}" "$TOP/../shared/lwm2m-registry" "$TOP/../../shared/lwm2m-registry"; do
		[ -n "$c" ] && [ -f "$c/3303.xml" ] && { reg=$c; break; }
	done
	[ -n "$reg" ] || skip "no OMA registry directory (set LWM2M_REGISTRY)"
	run "$UNIT/test_codec" --registry "$reg"
	assert_success
}
