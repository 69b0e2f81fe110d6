// Join-request builder and join-accept checker over npm lora-packet (an independent stack).
const lp = require("lora-packet");
const [cmd, ...a] = process.argv.slice(2);
const B = (h) => Buffer.from(h, "hex");
if (cmd === "jr") {
  // jr KEY JOINEUI DEVEUI DEVNONCE  (KEY: AppKey for 1.0, NwkKey for 1.1)
  const p = lp.fromFields({ MType: "Join Request", AppEUI: B(a[1]), DevEUI: B(a[2]), DevNonce: B(a[3]) }, null, null, B(a[0]));
  console.log(p.getPHYPayload().toString("hex").toUpperCase());
} else if (cmd === "ja10") {
  // ja10 APPKEY DEVNONCE PHY
  const appKey = B(a[0]);
  const p = lp.fromWire(lp.decryptJoinAccept(lp.fromWire(B(a[2])), appKey));
  const keys = lp.generateSessionKeys10(appKey, p.NetID, p.AppNonce, B(a[1]));
  console.log(JSON.stringify({ mic: lp.verifyMIC(p, null, appKey), JoinNonce: p.AppNonce.toString("hex"),
    NetID: p.NetID.toString("hex"), DevAddr: p.DevAddr.toString("hex"), DLSettings: p.DLSettings.toString("hex"),
    RxDelay: p.RxDelay.toString("hex"), CFList: p.CFList.toString("hex"), OptNeg: p.getDLSettingsOptNeg(),
    NwkSKey: keys.NwkSKey.toString("hex").toUpperCase(), AppSKey: keys.AppSKey.toString("hex").toUpperCase() }));
} else if (cmd === "ja11") {
  // ja11 NWKKEY APPKEY JOINEUI DEVEUI DEVNONCE PHY
  const nwkKey = B(a[0]), appKey = B(a[1]);
  const p = lp.fromWire(lp.decryptJoinAccept(lp.fromWire(B(a[5])), nwkKey));
  p.JoinEUI = B(a[2]); p.DevNonce = B(a[4]); p.JoinReqType = Buffer.from([0xff]);
  const js = lp.generateJSKeys(nwkKey, B(a[3]));
  const keys = lp.generateSessionKeys11(appKey, nwkKey, B(a[2]), p.AppNonce, B(a[4]));
  console.log(JSON.stringify({ mic: lp.verifyMIC(p, js.JSIntKey), JoinNonce: p.AppNonce.toString("hex"),
    NetID: p.NetID.toString("hex"), DevAddr: p.DevAddr.toString("hex"), OptNeg: p.getDLSettingsOptNeg(),
    FNwkSIntKey: keys.FNwkSIntKey.toString("hex").toUpperCase(), SNwkSIntKey: keys.SNwkSIntKey.toString("hex").toUpperCase(),
    NwkSEncKey: keys.NwkSEncKey.toString("hex").toUpperCase(), AppSKey: keys.AppSKey.toString("hex").toUpperCase() }));
}
