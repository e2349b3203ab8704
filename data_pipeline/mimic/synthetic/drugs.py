"""Drug vocabulary: prescriptions/pharmacy/eMAR names, invented 11-digit NDCs mapped to real WHO ATC classes,
ED (pyxis/medrecon) names and ETC classes.

The NDC numbers are invented (11 digits, labeler-product-package without dashes); every one has a row in the
``ndc_atc`` mapping, so the ``prescriptions_atc`` and ``medrecon_atc`` tasks always resolve.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    key: str
    name: str  # prescriptions.drug / pharmacy.medication / emar.medication
    ndc: str
    atc_code: str  # ATC level 4 (chemical subgroup)
    atc_name: str
    gsn: str
    strength: str  # prod_strength
    form_rx: str
    dose: str  # dose_val_rx
    dose_unit: str
    form_val: str
    form_unit: str
    per_day: int  # doses_per_24_hrs
    route: str
    frequency: str  # pharmacy.frequency
    drug_type: str  # MAIN / BASE
    pyxis: str  # ED pyxis / medrecon display name
    etc: tuple[str, str]  # (etccode, etcdescription) for medrecon


_ROWS = """
vancomycin|Vancomycin|00338355148|J01XA|Glycopeptide antibacterials|043952|1g Frozen Bag|BAG|1000|mg|1|BAG|2|IV|Q12H|MAIN|Vancomycin|00002698|Antibiotic - Glycopeptides
piptazo|Piperacillin-Tazobactam|60505075404|J01CR|Combinations of penicillins, incl. beta-lactamase inhibitors|064867|4.5 g Vial|VIAL|4.5|g|1|VIAL|3|IV|Q8H|MAIN|Piperacillin-Tazobactam|00002644|Antibiotic - Penicillins
ceftriaxone|CefTRIAXone|00409733201|J01DD|Third-generation cephalosporins|009166|1gm Vial|VIAL|1|gm|1|VIAL|1|IV|Q24H|MAIN|CefTRIAXone|00002645|Antibiotic - Cephalosporins
azithromycin|Azithromycin|00069315083|J01FA|Macrolides|062102|250mg Tab|TAB|500|mg|2|TAB|1|PO/NG|Q24H|MAIN|Azithromycin|00002647|Antibiotic - Macrolides
cefazolin|CeFAZolin|00143992490|J01DB|First-generation cephalosporins|008996|2g Vial|VIAL|2|g|1|VIAL|3|IV|Q8H|MAIN|CeFAZolin|00002645|Antibiotic - Cephalosporins
nitrofurantoin|Nitrofurantoin Monohyd (MacroBID)|47781030301|J01XE|Nitrofuran derivatives|008697|100mg Capsule|CAP|100|mg|1|CAP|2|PO|Q12H|MAIN|Nitrofurantoin|00002661|Antibiotic - Urinary Anti-infectives
furosemide_iv|Furosemide|00641619225|C03CA|Sulfonamides, plain|008208|10mg/mL - 4mL|VIAL|40|mg|1|VIAL|2|IV|BID|MAIN|Furosemide|00000279|Diuretic - Loop
metoprolol|Metoprolol Tartrate|00378003201|C07AB|Beta blocking agents, selective|005132|25mg Tablet|TAB|25|mg|1|TAB|2|PO/NG|BID|MAIN|Metoprolol Tartrate|00000305|Beta Blockers Cardio-Selective
lisinopril|Lisinopril|68180098103|C09AA|ACE inhibitors, plain|000388|10mg Tablet|TAB|10|mg|1|TAB|1|PO|DAILY|MAIN|Lisinopril|00000282|Antihypertensive - ACE Inhibitors
ns|Sodium Chloride 0.9%  Flush|00409488820|B05XA|Electrolyte solutions|001210|10 mL Syringe|SYR|3|mL|0.3|SYR|3|IV|Q8H|MAIN|Sodium Chloride 0.9%|00001036|IV Solutions: Dextrose-Saline
ns_bolus|0.9% Sodium Chloride|00338004904|B05BB|Solutions affecting the electrolyte balance|001208|1000mL Bag|BAG|1000|mL|1|BAG|1|IV|ONCE|BASE|NS (Bag)|00001036|IV Solutions: Dextrose-Saline
sodium_bicarbonate|Sodium Bicarbonate|00409662502|B05XA|Electrolyte solutions|001304|650 mg Tab|TAB|1300|mg|2|TAB|2|PO|BID|MAIN|Sodium Bicarbonate|00000384|Alkalinizing Agents
prednisone|PredniSONE|00054472825|H02AB|Glucocorticoids|006749|20mg Tab|TAB|40|mg|2|TAB|1|PO|DAILY|MAIN|PredniSONE|00000470|Glucocorticoids
methylprednisolone|MethylPREDNISolone Sodium Succ|00009003922|H02AB|Glucocorticoids|006769|125mg Vial|VIAL|125|mg|1|VIAL|1|IV|ONCE|MAIN|Methylprednisolone|00000470|Glucocorticoids
duoneb|Ipratropium-Albuterol Neb|00487020160|R03AL|Adrenergics in combination with anticholinergics|026540|3mL Vial|NEB|1|NEB|1|NEB|4|IH|Q6H|MAIN|Ipratropium-Albuterol|00000211|Bronchodilator - Anticholinergic Combinations
tiotropium|Tiotropium Bromide|00597007561|R03BB|Anticholinergics|047593|18mcg Cap|CAP|1|CAP|1|CAP|1|IH|DAILY|MAIN|Tiotropium|00000211|Bronchodilator - Anticholinergic Combinations
insulin_iv|Insulin Human Regular|00169183311|A10AB|Insulins and analogues for injection, fast-acting|027020|100 Units / 100 mL|BAG|100|UNIT|1|BAG|1|IV DRIP|Continuous|MAIN|Insulin Regular|00000246|Insulins
metformin|MetFORMIN (Glucophage)|00093104801|A10BA|Biguanides|010858|500mg Tablet|TAB|500|mg|1|TAB|2|PO|BID|MAIN|Metformin|00000247|Antidiabetic - Biguanides
potassium_chloride|Potassium Chloride|00409708213|A12BA|Potassium|001317|20mEq Packet|PKT|40|mEq|2|PKT|1|PO|ONCE|MAIN|Potassium Chloride|00000383|Potassium Replacement
aspirin|Aspirin|63739052201|B01AC|Platelet aggregation inhibitors excl. heparin|004376|81mg Tab|TAB|81|mg|1|TAB|1|PO/NG|DAILY|MAIN|Aspirin|00000193|Salicylate Analgesics
heparin_iv|Heparin|63323054701|B01AB|Heparin group|006549|25,000 unit Premix Bag|BAG|25000|UNIT|1|BAG|1|IV DRIP|Continuous|MAIN|Heparin|00000198|Anticoagulants - Heparin
heparin_sq|Heparin|63323026201|B01AB|Heparin group|006559|5000 Units / mL- 1mL Vial|VIAL|5000|UNIT|1|mL|3|SC|Q8H|MAIN|Heparin (SQ)|00000198|Anticoagulants - Heparin
enoxaparin|Enoxaparin Sodium|00075062230|B01AB|Heparin group|022463|40mg/0.4mL Syringe|SYR|40|mg|0.4|mL|1|SC|DAILY|MAIN|Enoxaparin|00000198|Anticoagulants - Heparin
apixaban|Apixaban|00003089321|B01AF|Direct factor Xa inhibitors|066615|5 mg Tab|TAB|5|mg|1|TAB|2|PO|BID|MAIN|Apixaban|00000199|Anticoagulants - Factor Xa Inhibitors
atorvastatin|Atorvastatin|00071015623|C10AA|HMG CoA reductase inhibitors|029968|40mg Tab|TAB|40|mg|1|TAB|1|PO/NG|QPM|MAIN|Atorvastatin|00000388|Antihyperlipidemic - HMG CoA Reductase Inhibitors
diltiazem|Diltiazem|00187206050|C08DB|Benzothiazepine derivatives|016958|25mg/5mL Vial|VIAL|10|mg|0.4|VIAL|1|IV|ONCE|MAIN|Diltiazem|00000278|Calcium Channel Blockers
nitroglycerin|Nitroglycerin SL|00071041713|C01DA|Organic nitrates|000503|0.4mg SL Tab|TAB|0.4|mg|1|TAB|3|SL|Q5MIN|MAIN|Nitroglycerin SL|00000285|Antianginal - Nitrates
pantoprazole_iv|Pantoprazole|00008092355|A02BC|Proton pump inhibitors|046637|40mg Vial|VIAL|40|mg|1|VIAL|2|IV|Q12H|MAIN|Pantoprazole|00002300|Gastric Acid Secretion Reducing Agents
omeprazole|Omeprazole|62175013643|A02BC|Proton pump inhibitors|020212|20mg Capsule|CAP|20|mg|1|CAP|1|PO|DAILY|MAIN|Omeprazole|00002300|Gastric Acid Secretion Reducing Agents
sertraline|Sertraline|16729000301|N06AB|Selective serotonin reuptake inhibitors|016374|50mg Tablet|TAB|50|mg|1|TAB|1|PO|DAILY|MAIN|Sertraline|00000570|Antidepressant - Selective Serotonin Reuptake Inhibitors
acetaminophen|Acetaminophen|00904677261|N02BE|Anilides|004489|325mg Tablet|TAB|650|mg|2|TAB|4|PO/NG|Q6H:PRN|MAIN|Acetaminophen|00000140|Analgesic or Antipyretic Non-Opioid
morphine|Morphine Sulfate|00409189001|N02AA|Natural opium alkaloids|004143|2mg Syringe|SYR|2|mg|1|SYR|6|IV|Q4H:PRN|MAIN|Morphine|00000135|Analgesic Opioid Agonists
ondansetron|Ondansetron|00781300895|A04AA|Serotonin (5HT3) antagonists|016445|2mg/mL-2mL|VIAL|4|mg|1|VIAL|3|IV|Q8H:PRN|MAIN|Ondansetron|00000340|Antiemetic - Serotonin Antagonists
prbc|Red Blood Cells|00000000020|B05AX|Other blood products|000000|1 Unit|UNIT|1|UNIT|1|UNIT|1|IV|ONCE|MAIN|Packed Red Blood Cells|00001038|Blood Components
"""

DRUGS: dict[str, Drug] = {}
for _line in _ROWS.strip().splitlines():
    _p = [x.strip() for x in _line.split("|")]
    (_key, _name, _ndc, _atc, _atc_name, _gsn, _strength, _form, _dose, _unit, _fval, _funit, _per_day,
     _route, _freq, _dtype, _pyxis, _etc, _etc_desc) = _p
    if len(_ndc) != 11 or not _ndc.isdigit():
        raise ValueError(f"drug {_key}: ndc {_ndc!r} must be 11 digits")
    DRUGS[_key] = Drug(_key, _name, _ndc, _atc, _atc_name, _gsn, _strength, _form, _dose, _unit, _fval, _funit,
                       int(_per_day), _route, _freq, _dtype, _pyxis, (_etc, _etc_desc))
